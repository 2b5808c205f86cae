import os
import subprocess
import sys

from crossbook.loadgen.setup import process_tree_cpu


def test_process_tree_cpu_counts_the_process_and_its_children() -> None:
    # This process alone first: the test run may have live children of its own (a database
    # server started by a fixture), which only the descendant sums count.
    own = process_tree_cpu(os.getpid(), descendants=False)
    assert own is not None
    assert own > 0
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        alone = process_tree_cpu(os.getpid(), descendants=False)
        with_child = process_tree_cpu(os.getpid())
        assert alone is not None
        assert with_child is not None
        assert own <= alone <= with_child
    finally:
        child.kill()
        child.wait()


def test_process_tree_cpu_of_a_missing_process_is_none() -> None:
    assert process_tree_cpu(2**22 + 12345) is None
