"""Output for the `accord` CLI: rich tables and colour on a terminal, plain text otherwise.

Every command prints through one :class:`Output`, so the choice between a terminal,
a pipe and ``--json`` is made in one place.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

#: Level colours (issue 6): no red, ask amber, yes green.
LEVEL_STYLES = {"no": "bold red", "ask": "bold dark_orange", "yes": "bold green"}


class Output:
    """Where a command's words go."""

    def __init__(
        self, *, json_mode: bool = False, stream: TextIO | None = None, force_plain: bool = False
    ) -> None:
        self.stream = stream or sys.stdout
        self.json_mode = json_mode
        self.rich = (not json_mode) and (not force_plain) and self.stream.isatty()
        self.console = Console(
            file=self.stream,
            highlight=False,
            no_color=not self.rich,
            force_terminal=self.rich,
            soft_wrap=not self.rich,
        )
        self.errors = Console(file=sys.stderr, highlight=False, no_color=not sys.stderr.isatty())

    # -- words -------------------------------------------------------------------------

    def say(self, text: str = "", style: str | None = None) -> None:
        """A sentence for the person at the terminal (silent in --json mode)."""
        if self.json_mode:
            return
        if self.rich:
            self.console.print(text, style=style)
        else:
            print(text, file=self.stream)

    def step(self, text: str) -> None:
        """One narrated step (the demo, long commands)."""
        self.say(f"→ {text}" if self.rich else f"- {text}", style="cyan")

    def note(self, text: str) -> None:
        self.say(text, style="dim")

    def warn(self, text: str) -> None:
        if self.rich:
            self.errors.print(text, style="yellow")
        else:
            print(text, file=sys.stderr)

    def error(self, text: str, hint: str | None = None) -> None:
        """An error: what happened, then what to do next."""
        text = text[:1].upper() + text[1:]
        if text and text[-1] not in ".!?":
            text += "."
        if self.rich:
            self.errors.print(text, style="red")
            if hint:
                self.errors.print(hint)
        else:
            print(text, file=sys.stderr)
            if hint:
                print(hint, file=sys.stderr)

    def data(self, value: Any) -> None:
        """The --json result of a command (printed only in --json mode)."""
        if self.json_mode:
            print(json.dumps(value, indent=2, sort_keys=True, default=str), file=self.stream)

    # -- tables ------------------------------------------------------------------------

    def level(self, level: str, pending: bool = False) -> str:
        """A level word, coloured on a terminal, marked when pending."""
        word = level
        if pending:
            word = f"{level} (pending)"
        if self.rich:
            style = LEVEL_STYLES.get(level, "")
            return f"[{style}]{word}[/]" if style else word
        return word

    def table(
        self, title: str | None, columns: Sequence[str], rows: Sequence[Sequence[str]]
    ) -> None:
        """A table: a rich table on a terminal, tab-separated columns otherwise."""
        if self.json_mode:
            return
        if self.rich:
            table = Table(title=title, show_lines=False, title_justify="left")
            for column in columns:
                table.add_column(column)
            for row in rows:
                table.add_row(*row)
            self.console.print(table)
            return
        if title:
            print(title, file=self.stream)
        widths = [len(c) for c in columns]
        for row in rows:
            widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
        print(
            "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip(),
            file=self.stream,
        )
        for row in rows:
            print(
                "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(),
                file=self.stream,
            )

    # -- progress ----------------------------------------------------------------------

    @contextmanager
    def progress(self, description: str, total: int | None = None) -> Iterator[Any]:
        """A progress bar on a terminal; occasional plain lines otherwise.

        Yields a function ``advance(done, total)``.
        """
        if self.rich:
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            ) as bar:
                task = bar.add_task(description, total=total)

                def advance(done: int, new_total: int | None = None) -> None:
                    bar.update(task, completed=done, total=new_total if new_total else None)

                yield advance
            return

        last = [-1]

        def advance_plain(done: int, new_total: int | None = None) -> None:
            if self.json_mode or not new_total or new_total < 100:
                return
            tenth = done * 10 // max(new_total, 1)
            if tenth != last[0]:
                last[0] = tenth
                print(f"{description}: {done}/{new_total}", file=self.stream)

        yield advance_plain
