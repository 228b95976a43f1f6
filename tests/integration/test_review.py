"""Lead reviews against a real Label Studio on loopback: disputes travel there and come back as gold labels.

The service runs for real (uvicorn), agents' decisions arrive through /v1/feedback, `triage-ml review ...`
runs as a subprocess, and leads' submits are annotations created through Label Studio's API, as its UI does.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from tests.integration.service_fixtures import KEYS, RunningService, free_port

pytestmark = pytest.mark.integration
CLI = str(Path(sys.executable).parent / "triage-ml")
SECRET = "webhook-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def service(trained_store, label_studio, tmp_path_factory):
    settings, _ = trained_store
    running = RunningService(settings, tmp_path_factory.mktemp("review"), TRIAGE_MODEL_POLL_SECONDS="0",
                             TRIAGE_LABEL_STUDIO_URL=label_studio.url, TRIAGE_LABEL_STUDIO_API_KEY=label_studio.token,
                             TRIAGE_LABEL_STUDIO_WEBHOOK_SECRET=SECRET)
    running.env["TRIAGE_LABEL_STUDIO_WEBHOOK_URL"] = f"{running.url}/v1/webhooks/label-studio"
    running.start()
    yield running
    running.stop()


def cli(service, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], env={**service.env, **env}, capture_output=True, text=True, timeout=600)


def score(service, message_id: str, text: str) -> str:
    with service.client("scorer") as c:
        r = c.post("/v1/score", json={"messages": [{"text": text, "message_id": message_id, "channel": "twitter",
                                                    "brand": "SkyLark Air", "conversation_id": f"conv-{message_id}"}]})
    assert r.status_code == 200, r.text
    return r.json()["model"]["version"]


def decide(service, **event) -> dict:
    with service.client("agent") as c:
        r = c.post("/v1/feedback", json={"decisions": [event]})
    assert r.status_code == 200, r.text
    return r.json()["results"][0]


def open_dispute(service, message_id: str, text: str) -> int:
    """Two agents who disagree: one answers the message, the other marks it spam."""
    version = score(service, message_id, text)
    decide(service, event_id=f"{message_id}-a", message_id=message_id, agent="ana", action="responded",
           model_version=version)
    result = decide(service, event_id=f"{message_id}-b", message_id=message_id, agent="bo", action="marked_spam",
                    model_version=version)
    assert result["disputes"], result
    return result["disputes"][0]


def dispute(service, dispute_id: int) -> dict:
    with service.client("lead") as c:
        r = c.get(f"/v1/disputes/{dispute_id}")
    assert r.status_code == 200, r.text
    return r.json()


def annotate(label_studio, task_id: int, choices: dict[str, str], *, note: str | None = None,
             by: int | None = None) -> None:
    """What a lead's submit in the labeling UI sends."""
    result = [{"from_name": k, "to_name": "text", "type": "choices", "value": {"choices": [v]}}
              for k, v in choices.items()]
    if note:
        result.append({"from_name": "note", "to_name": "text", "type": "textarea", "value": {"text": [note]}})
    extra = {"completed_by": by} if by is not None else {}
    label_studio.sdk().annotations.create(id=task_id, result=result, **extra)


def push(service, **env: str) -> subprocess.CompletedProcess:
    # Without the webhook, so that the pull path is what resolves (the webhook has its own test).
    return cli(service, "review", "push", TRIAGE_LABEL_STUDIO_WEBHOOK_URL="", **env)


def test_dispute_travels_to_label_studio_and_back_as_the_winning_label(service, label_studio, tmp_path):
    dispute_id = open_dispute(service, "rv-1", "@SkyLarkAir where is my refund? 3 weeks now and nothing")
    first = push(service)
    assert first.returncode == 0, first.stderr
    assert "1 task(s) created" in first.stdout
    there = int(re.search(r"(\d+) already there", first.stdout)[1])  # other tests' disputes may be pushed
    again = push(service)
    assert "0 task(s) created" in again.stdout and f"{there + 1} already there" in again.stdout  # no duplicate

    view = dispute(service, dispute_id)
    task = label_studio.sdk().tasks.get(id=view["review"]["task_id"])
    assert task.data["dispute_id"] == dispute_id and task.data["message_id"] == "rv-1"
    assert "agent ana and agent bo disagree" in task.data["why"]
    assert "ana responded" in task.data["why"] and "bo marked_spam" in task.data["why"]
    assert "channel: twitter" in task.data["context"] and "conversation: conv-rv-1" in task.data["context"]
    [prediction] = task.predictions
    assert prediction.model_version == f"triage-ml v{view['prediction']['model_version']}"
    assert 0.5 <= prediction.score <= 1
    assert prediction.result[0]["from_name"] == "actionable"

    annotate(label_studio, task.id, {"actionable": "actionable", "priority_tier": "1", "crisis": "no crisis",
                                     "reason": "question"}, note="a refund question: answer it")
    pulled = cli(service, "review", "pull")
    assert pulled.returncode == 0, pulled.stderr
    assert "1 dispute(s) resolved" in pulled.stdout

    view = dispute(service, dispute_id)
    assert view["state"] == "resolved" and view["resolved_by"] == label_studio.email
    assert view["resolution"]["labels"] == {"actionable": True, "priority_tier": 1, "crisis": False}
    assert view["resolution"]["source"] == "label-studio" and view["resolution"]["task_id"] == task.id
    assert "a refund question" in view["resolution"]["note"]

    out = tmp_path / "labels.csv"
    assert cli(service, "labels", "export", "--out", str(out)).returncode == 0
    row = pd.read_csv(out, dtype=str, keep_default_na=False).set_index("message_id").loc["rv-1"]
    assert (row.actionable, row.priority_tier, row.crisis) == ("True", "1", "False")  # the lead over bo's spam
    assert (row.actionable_source, row.priority_tier_source, row.crisis_source) == ("lead", "lead", "lead")
    assert "0 dispute(s) resolved" in cli(service, "review", "pull").stdout  # pulling again changes nothing


@pytest.fixture
def webhooks_removed_after(service, label_studio):
    """The webhooks a test has Label Studio post to this module's service are removed when it ends: the other
    tests resolve through `review pull`, and must find their disputes still open in any order."""
    yield
    sdk = label_studio.sdk()
    for hook in sdk.webhooks.list():
        if hook.url.startswith(service.url):
            sdk.webhooks.delete(id=hook.id)


def test_a_leads_submit_resolves_the_dispute_through_the_webhook(service, label_studio, webhooks_removed_after):
    dispute_id = open_dispute(service, "rv-2", "RT to win a free flight!! @SkyLarkAir #giveaway")
    pushed = cli(service, "review", "push")
    assert pushed.returncode == 0, pushed.stderr
    assert f"posted to {service.url}/v1/webhooks/label-studio" in pushed.stdout
    task_id = dispute(service, dispute_id)["review"]["task_id"]
    annotate(label_studio, task_id, {"actionable": "noise", "crisis": "no crisis"})
    deadline = time.monotonic() + 30
    while (view := dispute(service, dispute_id))["state"] != "resolved" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert view["state"] == "resolved", "the webhook did not resolve the dispute within 30 s"
    assert view["resolution"]["labels"] == {"actionable": False, "priority_tier": None, "crisis": False}
    # the receiver refuses a wrong secret
    with service.client(None) as c:
        r = c.post("/v1/webhooks/label-studio", json={"action": "ANNOTATION_CREATED"},
                   headers={"X-Triage-Webhook-Secret": "wrong"})
    assert r.status_code == 401


def test_an_annotation_against_the_taxonomy_is_not_stored(service, label_studio):
    dispute_id = open_dispute(service, "rv-3", "@SkyLarkAir the seat belt on 14C is broken and the crew shrugged")
    assert push(service).returncode == 0
    task_id = dispute(service, dispute_id)["review"]["task_id"]
    annotate(label_studio, task_id, {"actionable": "noise", "crisis": "crisis"})
    pulled = cli(service, "review", "pull")
    assert pulled.returncode == 0, pulled.stderr
    assert f"dispute {dispute_id}" in pulled.stdout and "a crisis is always actionable" in pulled.stdout
    view = dispute(service, dispute_id)
    assert view["state"] == "open" and view["resolution"] is None


def test_leads_who_disagree_keep_it_open_and_stats_report_kappa(service, label_studio):
    sdk = label_studio.sdk()
    second = sdk.users.create(username="lead-two", email="lead.two@example.com", password="lead-two-pw-12345")
    answers = {  # (lead one, lead two) per message
        "rv-k1": ({"actionable": "actionable", "priority_tier": "1", "crisis": "no crisis"},
                  {"actionable": "actionable", "priority_tier": "1", "crisis": "no crisis"}),
        "rv-k2": ({"actionable": "noise", "crisis": "no crisis"}, {"actionable": "noise", "crisis": "no crisis"}),
        "rv-k3": ({"actionable": "actionable", "priority_tier": "2", "crisis": "no crisis"},
                  {"actionable": "actionable", "priority_tier": "2", "crisis": "no crisis"}),
        "rv-k4": ({"actionable": "actionable", "priority_tier": "1", "crisis": "crisis"},
                  {"actionable": "noise", "crisis": "no crisis"}),
    }
    ids = {m: open_dispute(service, m, f"@SkyLarkAir message {m} about my booking") for m in answers}
    assert push(service).returncode == 0
    project = sdk.tasks.get(id=dispute(service, ids["rv-k1"])["review"]["task_id"]).project
    sdk.projects.update(id=project, maximum_annotations=2)  # leads decided: two of them per task
    try:
        for m, (one, two) in answers.items():
            task_id = dispute(service, ids[m])["review"]["task_id"]
            annotate(label_studio, task_id, one)
            annotate(label_studio, task_id, two, by=second.id)
        pulled = cli(service, "review", "pull")
    finally:
        sdk.projects.update(id=project, maximum_annotations=1)
    assert pulled.returncode == 0, pulled.stderr
    assert "lead.one@example.com, lead.two@example.com disagree on actionable, crisis" in pulled.stdout
    states = {m: dispute(service, i)["state"] for m, i in ids.items()}
    assert states == {"rv-k1": "resolved", "rv-k2": "resolved", "rv-k3": "resolved", "rv-k4": "open"}
    assert dispute(service, ids["rv-k1"])["resolution"]["leads"] == ["lead.one@example.com", "lead.two@example.com"]

    stats = cli(service, "review", "stats", "--json")
    assert stats.returncode == 0, stats.stderr
    import json

    report = json.loads(stats.stdout)
    assert report["tasks_with_two_or_more_leads"] == 4
    one, two = [1, 0, 1, 1], [1, 0, 1, 0]  # actionable: the leads differ on rv-k4 only
    assert report["heads"]["actionable"]["pairs"] == 4
    assert report["heads"]["actionable"]["kappa"] == pytest.approx(cohen_kappa_score(one, two), abs=1e-4)
    assert report["heads"]["crisis"]["agreement"] == 0.75
    text = cli(service, "review", "stats").stdout
    assert "actionable" in text and "Cohen's kappa" in text


def test_label_studio_down_or_token_refused_is_one_line_and_marks_nothing(service):
    dispute_id = open_dispute(service, "rv-5", "@SkyLarkAir lost my bag in Lisbon, again")
    down = push(service, TRIAGE_LABEL_STUDIO_URL=f"http://127.0.0.1:{free_port()}")
    assert down.returncode == 2
    assert down.stderr.count("\n") == 1 and "is unreachable" in down.stderr and "Traceback" not in down.stderr
    refused = push(service, TRIAGE_LABEL_STUDIO_API_KEY="f" * 40)
    assert refused.returncode == 2 and "refused the API token" in refused.stderr
    assert cli(service, "review", "pull", TRIAGE_LABEL_STUDIO_API_KEY="f" * 40).returncode == 2
    assert dispute(service, dispute_id)["review"] is None  # nothing marked pushed
    missing = push(service, TRIAGE_LABEL_STUDIO_API_KEY="")
    assert missing.returncode == 2 and "TRIAGE_LABEL_STUDIO_API_KEY" in missing.stderr


def test_suggest_fills_the_review_queue_with_reasons(service, label_studio, seed, tmp_path):
    sample = seed.iloc[5:200:5]
    for row in sample.itertuples():
        score(service, f"al-{row.message_id}", row.text)
    for i, row in enumerate(sample.head(12).itertuples()):  # a few agent labels, some of them wrong on purpose
        action = "marked_spam" if i % 3 == 0 else "responded"
        decide(service, event_id=f"al-evt-{i}", message_id=f"al-{row.message_id}", agent="cy", action=action)

    sdk = label_studio.sdk()

    def queue() -> list:
        """The review queue's tasks (another test of this module may have filled some already)."""
        projects = [p for p in sdk.projects.list() if p.title == "triage-ml: review queue"]
        if not projects:
            return []
        return list(sdk.tasks.list(project=max(projects, key=lambda p: p.id).id, fields="all"))

    before = {t.id for t in queue()}
    first = cli(service, "review", "suggest", "--n", "8")
    assert first.returncode == 0, first.stderr
    assert "8 of" in first.stdout
    second = cli(service, "review", "suggest", "--n", "8")
    assert second.returncode == 0, second.stderr

    everything = queue()
    assert len({t.data["message_id"] for t in everything}) == len(everything)  # no message twice
    tasks = [t for t in everything if t.id not in before]
    assert len(tasks) == 16
    rules = {r for t in tasks for r in t.data["queue_reasons"]}
    assert "uncertain" in rules and rules <= {"uncertain", "crisis_near_threshold", "label_issue"}
    assert all(t.data["why"].startswith("Chosen for review because:\n- ") and t.predictions for t in tasks)

    chosen = tasks[0]
    annotate(label_studio, chosen.id, {"actionable": "actionable", "priority_tier": "2", "crisis": "no crisis"})
    pulled = cli(service, "review", "pull", TRIAGE_LABEL_STUDIO_WEBHOOK_URL="")
    assert "queue item(s) answered" in pulled.stdout
    out = tmp_path / "labels.csv"
    assert cli(service, "labels", "export", "--out", str(out)).returncode == 0
    row = pd.read_csv(out, dtype=str, keep_default_na=False).set_index("message_id").loc[chosen.data["message_id"]]
    assert (row.actionable, row.priority_tier, row.actionable_source) == ("True", "2", "lead")


# Watch-list messages of the shipped map (serving/routing.yaml) that a model trained on the seed may well
# call no crisis: /v1/score lifts each to the map's crisis floor.
WATCHED = {"al-w1": "@SkyLarkAir got a phishing email pretending to be you this morning, thought you should know",
           "al-w2": "@SkyLarkAir is the BBC documentary about your cabin crew on tonight?",
           "al-w3": "@SkyLarkAir my sister is a journalist and she loved the new lounge in Lisbon",
           "al-w4": "@SkyLarkAir my lawyer friend says your new seats are the comfiest around"}


def test_suggest_decides_watch_list_crises_as_the_service_does(service, label_studio, trained_store):
    """A watch-list message the bare model scores under the crisis threshold is a crisis for /v1/score:
    suggest pre-annotates it as one and never offers it as "just under the threshold"."""
    from triage_ml.registry import client_for, load

    settings, _ = trained_store
    model = load(client_for(settings), settings.model_uri())
    bare = model.predict_frame(list(WATCHED.values()))["crisis_risk"].to_numpy()
    under = [m for m, risk in zip(WATCHED, bare, strict=True) if risk < model.thresholds["crisis"]]
    assert under, f"the bare model calls every watched message a crisis ({bare}); pick milder texts"
    with service.client("scorer") as c:  # one with a conversation, the others without: None stays None
        r = c.post("/v1/score", json={"messages": [{"text": t, "message_id": m, "channel": "twitter",
                                                    "brand": "SkyLark Air", **({"conversation_id": "conv-w"} if i == 0
                                                                               else {})}
                                                   for i, (m, t) in enumerate(WATCHED.items())]})
    assert r.status_code == 200, r.text
    assert all(res["crisis"] for res in r.json()["results"]), r.json()["results"]  # the service's decision

    added = cli(service, "review", "suggest", "--n", "10000")  # every candidate: each watched message is added
    assert added.returncode == 0, added.stderr
    sdk = label_studio.sdk()
    project = max((p for p in sdk.projects.list() if p.title == "triage-ml: review queue"), key=lambda p: p.id)
    tasks = {t.data["message_id"]: t for t in sdk.tasks.list(project=project.id, fields="all")}
    for m in under:
        task = tasks[m]
        [prediction] = task.predictions
        crisis = [item["value"]["choices"] for item in prediction.result if item["from_name"] == "crisis"]
        assert crisis == [["crisis"]], (m, prediction.result)
        assert "crisis_near_threshold" not in task.data["queue_reasons"], (m, task.data["why"])


def test_webhook_without_a_configured_secret_accepts_nothing(trained_store, tmp_path):
    settings, _ = trained_store
    running = RunningService(settings, tmp_path, TRIAGE_MODEL_POLL_SECONDS="0").start()
    try:
        with running.client(None) as c:
            r = c.post("/v1/webhooks/label-studio", json={"action": "ANNOTATION_CREATED"},
                       headers={"X-Triage-Webhook-Secret": KEYS["lead"]})
        assert r.status_code == 401 and "TRIAGE_LABEL_STUDIO_WEBHOOK_SECRET" in r.json()["detail"]
    finally:
        running.stop()


# -- the lead's screen, in a real browser ----------------------------------------------------------------------
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def browser():
    """Debian's headless Chromium through its ChromeDriver (`make test` installs both; nothing downloads a
    browser): no sandbox as root, no background traffic on a machine without internet."""
    import os

    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        message = "Debian's chromium and chromium-driver are not installed; `make test` installs them (make browser)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def visible_text(driver, contains: str, timeout: float = 90) -> str:
    """The page's visible text once it shows ``contains`` (Label Studio renders the task after the page loads)."""
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    while True:
        text = driver.find_element(By.TAG_NAME, "body").text
        if contains in text or time.monotonic() > deadline:
            return text
        time.sleep(0.5)


def test_a_lead_sees_the_message_why_it_is_disputed_the_decisions_and_every_choice(service, label_studio, browser):
    from selenium.webdriver.common.by import By

    from triage_ml.review.labeling import ACTIONABLE, CRISIS
    from triage_ml.taxonomy import ACTIONABLE_REASONS, TIERS

    text = "@SkyLarkAir my bag was left in Denver and nobody picks up the phone"
    dispute_id = open_dispute(service, "rv-screen", text)
    assert push(service).returncode == 0
    task = label_studio.sdk().tasks.get(id=dispute(service, dispute_id)["review"]["task_id"])

    browser.get(f"{label_studio.url}/user/login")
    browser.find_element(By.NAME, "email").send_keys(label_studio.email)
    browser.find_element(By.NAME, "password").send_keys(label_studio.password)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    deadline = time.monotonic() + 60
    while "/user/login" in browser.current_url:  # signed in once the login page has gone
        assert time.monotonic() < deadline, visible_text(browser, "", 0)
        time.sleep(0.2)
    browser.get(f"{label_studio.url}/projects/{task.project}/data?task={task.id}")
    shown = visible_text(browser, "Agent decisions")
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "label-studio-dispute.png"))  # kept for people to look at

    assert text in shown
    assert "agent ana and agent bo disagree" in shown  # why it is disputed
    assert "ana responded" in shown and "bo marked_spam" in shown  # every agent's decision
    assert "channel: twitter" in shown and "conversation: conv-rv-screen" in shown
    lines = set(shown.splitlines())
    choices = [*ACTIONABLE, *(str(t) for t in TIERS), *CRISIS, *sorted(ACTIONABLE_REASONS)]
    missing = [c for c in choices if not any(line == c or line.startswith(f"{c}[") for line in lines)]
    assert not missing, f"choices not on the lead's screen: {missing}"
    assert (ARTIFACTS / "label-studio-dispute.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
