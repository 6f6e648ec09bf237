"""``forgeline logs``: a step's stdout and stderr, read in bounded chunks, optionally followed while it runs."""

from __future__ import annotations

import codecs
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Annotated

import typer
from rich.console import Console

from forgeline.cli.context import CliContext
from forgeline.cli.output import JsonOption, print_json_lines
from forgeline.cli.remote import log_chunks
from forgeline.cli.step_source import announce_source
from forgeline.cli.watch import LIVENESS_CHECK_SECONDS
from forgeline.engine.execution import PipelineExecution
from forgeline.engine.step_records import chosen_attempt, logged_attempts, ran_in, step_ended
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import StepAttempt, StepEventKind, StepRun

LOG_CHUNK_BYTES = 1024 * 1024
"""Logs are read this much at a time, so a huge log (or one endless line) never sits in memory whole."""

POLL_SECONDS = 0.2


@dataclass(frozen=True)
class LogLine:
    """One line of a step's log (a piece of it when the line is longer than a chunk), for ``--json``."""

    execution_id: str
    step_name: str
    attempt: int
    text: str


def logs(
    execution_id: Annotated[str, typer.Argument(help="Execution id or unique prefix.")],
    step: Annotated[str, typer.Argument(help="Step name.")],
    attempt: Annotated[int | None, typer.Option(help="Attempt number (default: the latest).")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing while the step runs; a "
                                         "Pending step is waited for.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Print a step's stdout and stderr (for a cache hit: those of the execution that ran it)."""
    ctx = CliContext()
    err = Console(stderr=True)
    if ctx.remote:
        found: list[StepRun] = []
        print_log(log_chunks(ctx.remote, execution_id, step, attempt, follow, err, found), as_json, found)
        return
    record = ctx.store.get_execution(execution_id)
    asked = ctx.store.get_step_run(record.id, step)
    # while following: a lost orchestrator ends the wait with one line (or is resumed, with auto-resume)
    running = PipelineExecution(record.id, ctx.runtime).ensure_running
    if follow:
        asked = wait_for_start(ctx.store, asked, err, running)
    source = ran_in(ctx.store, asked)  # a cache hit's log is that of the execution that ran the step
    announce_source(err, asked, source, "log")
    chosen = chosen_attempt(ctx.store, source, attempt)
    chunks = follow_log(ctx.store, source, chosen, follow and attempt is None, err, running) if follow \
        else read_chunks(chosen, 0)[0]
    print_log(chunks, as_json, [source])


def print_log(chunks: Iterator[tuple[int, str]], as_json: bool, source: list[StepRun]) -> None:
    """Write the log's (attempt, text) pieces to stdout as they come, or as JSON lines (one per log line).

    ``source`` holds the step run whose log it is once the first piece came.
    """
    if as_json:
        print_json_lines(LogLine(source[0].execution_id, source[0].name, number, text)
                         for number, text in split_lines(chunks))
        return
    for _, text in chunks:
        sys.stdout.write(text)
        sys.stdout.flush()


def wait_for_start(store: MetadataStore, run: StepRun, err: Console,
                   running: Callable[[], None] = lambda: None) -> StepRun:
    """Wait until the step has a log or has ended (a cache hit, a skip), saying once on stderr that it waits.

    ``running`` is called at each poll and raises when the execution can no longer go on.
    """
    announced = False
    while True:
        run = store.get_step_run(run.execution_id, run.name)
        if logged_attempts(store, run, None) or run.status.is_terminal \
                or store.get_execution(run.execution_id).status.is_terminal:
            return run
        if not announced:
            err.print(f"waiting for step {run.name} to start (now {run.status.value})", highlight=False)
            announced = True
        running()
        time.sleep(POLL_SECONDS)


def read_chunks(attempt: StepAttempt, offset: int) -> tuple[Iterator[tuple[int, str]], list[int]]:
    """The log's text from ``offset`` on, chunk by chunk, and a cell that holds the offset reached."""
    reached = [offset]

    def chunks() -> Iterator[tuple[int, str]]:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            handle = open(attempt.log_path or "", "rb")  # noqa: SIM115 - closed below, generator-scoped
        except FileNotFoundError:
            return
        with handle:
            handle.seek(offset)
            for chunk in iter(partial(handle.read, LOG_CHUNK_BYTES), b""):
                reached[0] += len(chunk)
                yield attempt.attempt, decoder.decode(chunk)
        tail = decoder.decode(b"", final=True)
        if tail:
            yield attempt.attempt, tail

    return chunks(), reached


def follow_log(store: MetadataStore, run: StepRun, attempt: StepAttempt, next_attempts: bool,
               err: Console, running: Callable[[], None] = lambda: None) -> Iterator[tuple[int, str]]:
    """The log as it grows until the step ends; with ``next_attempts``, a retry's log follows its predecessor's.

    The step's end and its next attempts are learnt from the execution's step events, read from a cursor.
    """
    offset = 0
    cursor: int | None = None
    ended = store.get_step_run(run.execution_id, run.name).status.is_terminal  # an execution from before events
    newest_attempt = attempt.attempt
    checked = time.monotonic()
    while True:
        events = [e for e in store.events(run.execution_id, after=cursor) if e.step_name == run.name]
        cursor = events[-1].id if events else cursor
        for event in events:
            ended = step_ended(event, ended)
            if event.kind == StepEventKind.LOG and event.attempt is not None:
                newest_attempt = max(newest_attempt, event.attempt)
        chunks, reached = read_chunks(attempt, offset)
        yield from chunks
        offset = reached[0]
        newer = [a for a in logged_attempts(store, run, None) if a.attempt > attempt.attempt] \
            if next_attempts and newest_attempt > attempt.attempt else []
        if newer:
            attempt, offset = newer[0], 0
            err.print(f"--- attempt {attempt.attempt}", highlight=False)
            continue
        if ended:  # read once more after the end was seen, so the last lines are not lost
            return
        if time.monotonic() - checked >= LIVENESS_CHECK_SECONDS:
            checked = time.monotonic()
            running()
        time.sleep(POLL_SECONDS)


def split_lines(chunks: Iterator[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    """Whole lines (without their newline) from chunks of text; a line longer than a chunk comes in pieces."""
    pending, pending_attempt = "", 0
    for number, text in chunks:
        if number != pending_attempt and pending:
            yield pending_attempt, pending
            pending = ""
        pending_attempt = number
        pending += text
        *lines, pending = pending.split("\n")
        yield from ((number, line) for line in lines)
        if len(pending) > LOG_CHUNK_BYTES:
            yield number, pending
            pending = ""
    if pending:
        yield pending_attempt, pending
