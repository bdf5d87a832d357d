"""The test commands a trace may ask QA to run: an allow-list of runners, plain arguments.

The command runs inside the sandbox, but it is still tenant input that a
program interprets: only pytest, as `pytest ...` or `python3 -m pytest ...`,
with arguments from a narrow character set (contracts.Arg), and never the
options that would load code from elsewhere or move the report QA reads.
"""

from __future__ import annotations

from flywheel.server.plugin_api import InvalidInput

DEFAULT_TEST_COMMAND = ("python3", "-m", "pytest", "-q")
JUNIT_FILE = ".flywheel-junit.xml"
_RUNNERS = (("pytest",), ("python3", "-m", "pytest"), ("python", "-m", "pytest"))
_REFUSED = ("--junitxml", "--junit-xml", "-p", "--rootdir", "-c", "--confcutdir", "--basetemp", "--pyargs")


def check_test_command(command: list[str]) -> list[str]:
    for runner in _RUNNERS:
        if tuple(command[: len(runner)]) == runner:
            for i, arg in enumerate(command[len(runner):], start=len(runner)):
                if arg.split("=", 1)[0] in _REFUSED:
                    raise InvalidInput(f"{arg.split('=', 1)[0]} is set by QA itself",
                                       field=f"$.test_command[{i}]")
            return list(command)
    raise InvalidInput("the test command starts with `pytest` or `python3 -m pytest`", field="$.test_command")


def sandbox_command(command: list[str]) -> list[str]:
    """What runs in the sandbox: the trace's command, with QA's report and no cache plugin."""
    runner = ["python3", "-m", "pytest"] if command[0] == "pytest" else ["python3", *command[1:3]]
    rest = command[1:] if command[0] == "pytest" else command[3:]
    return [*runner, *rest, "-p", "no:cacheprovider", f"--junitxml={JUNIT_FILE}"]
