"""A job's process tree: a subreaper finds every process below it, setsid orphans included, and ends them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from forgeline.jobs.process_tree import descendants

# A subreaper starts a child that starts a setsid grandchild and exits at once: the grandchild is orphaned, and
# comes to the subreaper instead of init. The subreaper then lists and ends what is below it.
SUBREAPER = textwrap.dedent("""
    import json, os, subprocess, sys, time
    from forgeline.jobs import process_tree

    assert process_tree.become_subreaper()
    orphan_maker = subprocess.Popen([sys.executable, "-c",
        "import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', "
        "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)'], "
        "start_new_session=True); print(p.pid, flush=True)"], stdout=subprocess.PIPE, text=True)
    grandchild = int(orphan_maker.stdout.readline())
    orphan_maker.wait()
    while grandchild not in process_tree.descendants(os.getpid()):  # re-parented once its parent is reaped
        time.sleep(0.01)
    found = process_tree.descendants(os.getpid())
    ended = process_tree.end_descendants(grace_seconds=0.2)
    print(json.dumps({"grandchild": grandchild, "found": found, "ended": ended,
                      "left": process_tree.descendants(os.getpid())}))
""")


def test_a_subreaper_finds_and_ends_an_orphan_that_called_setsid_and_ignores_sigterm():
    done = subprocess.run([sys.executable, "-c", SUBREAPER], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["found"] == [report["grandchild"]]
    assert report["ended"] == [report["grandchild"]]
    assert report["left"] == []


def test_descendants_of_a_process_without_children_are_none():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert descendants(child.pid) == []
    finally:
        child.kill()
        child.wait()


# A subreaper with two orphans below it: one an ordinary process, one a server shared by every job.
SHARED = textwrap.dedent("""
    import json, os, subprocess, sys, time
    from forgeline.jobs import process_tree

    assert process_tree.become_subreaper()
    sleep = "import time; time.sleep(600)"
    shared = subprocess.Popen([sys.executable, "-c", sleep, process_tree.SHARED_SERVER_ARGUMENT.decode()])
    ordinary = subprocess.Popen([sys.executable, "-c", sleep])
    while process_tree.SHARED_SERVER_ARGUMENT not in open(f"/proc/{shared.pid}/cmdline", "rb").read().split(b"\\0"):
        time.sleep(0.01)  # until it has exec'd its own command line
    report = {"shared": shared.pid, "ordinary": ordinary.pid, "found": process_tree.descendants(os.getpid()),
              "ended": process_tree.end_descendants(grace_seconds=0.2)}
    report["shared_alive"] = shared.poll() is None
    shared.kill()
    print(json.dumps(report))
""")


def test_ending_a_tree_leaves_a_shared_server_below_it_alone():
    done = subprocess.run([sys.executable, "-c", SHARED], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["found"] == [report["ordinary"]]
    assert report["ended"] == [report["ordinary"]]
    assert report["shared_alive"]
