"""The `slo-bot` command line: parse arguments, call the core, print, exit with a meaningful code.

Exit codes: 0 fine; 1 a human must fix something (invalid catalogue, bad query, unknown SLO);
2 wrong usage; 3 a source was unavailable (try again later).
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TextIO

from bot import logs
from bot.durations import parse_duration
from bot.settings import Settings

# Only the standard library and what parsing the arguments needs are imported here: `slo-bot --help`
# and `validate` (in a pre-commit hook) must not pay for the database, the sources, Slack or the web
# server. Each command imports its own machinery when it runs; tests/test_startup.py keeps it so.
if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlmodel import Session

    from bot import replay, report
    from bot.adjustments import Adjustment
    from bot.budget import Outlook, Status
    from bot.domain import SLO, Bucket

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3


class UsageError(Exception):
    """Bad input from the person at the terminal: printed without a traceback."""

    def __init__(self, message: str, code: int = EXIT_PROBLEM) -> None:
        super().__init__(message)
        self.code = code


def parse_time(text: str) -> datetime:
    if text == "now":
        return datetime.now(UTC)
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"invalid time {text!r}: use ISO 8601, e.g. 2026-11-27T12:00:00Z", EXIT_USAGE
        ) from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def parse_step(text: str) -> timedelta:
    try:
        step = parse_duration(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if step < timedelta(minutes=1) or step % timedelta(minutes=1):
        raise argparse.ArgumentTypeError(f"step {text!r} must be whole minutes")
    return step


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slo-bot",
        description="SLO error budgets from monitoring APIs, burn-rate alerts in Slack.",
        epilog="Exit codes: 0 ok, 1 something to fix (catalogue, query, name), 2 usage, "
        "3 a source was unavailable (retry later). Environment: DATABASE_URL, SLO_BOT_CONFIG.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("validate", help="check OpenSLO / Sloth files; one line per problem")
    p.add_argument("files", nargs="+", metavar="FILE")

    p = commands.add_parser("apply", help="validate, then create/update the SLOs in the database")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--prune", action="store_true", help="delete stored SLOs not in FILEs")

    p = commands.add_parser("check", help="query the sources, update budgets, print status")
    p.add_argument(
        "--at",
        type=parse_time,
        default=None,
        metavar="TIME",
        help="evaluate as of TIME (ISO 8601, UTC if no offset); default now",
    )
    p.add_argument("--slo", action="append", metavar="NAME", help="only this SLO (repeatable)")
    p.add_argument("--json", action="store_true", help="print the JSON of SPEC.md")

    p = commands.add_parser(
        "replay", help="replay the alert policy over past data; print each alert transition"
    )
    p.add_argument("--from", dest="start", type=parse_time, required=True, metavar="TIME")
    p.add_argument("--to", dest="end", type=parse_time, required=True, metavar="TIME")
    p.add_argument("--step", type=parse_step, default=timedelta(minutes=1), metavar="DURATION")
    p.add_argument("--slo", action="append", metavar="NAME", help="only this SLO (repeatable)")
    p.add_argument("--json", action="store_true", help="one JSON object a line per transition")

    p = commands.add_parser("run", help="the bot: scheduler, alerts (console mode without Slack)")
    p.add_argument("--port", type=int, default=3000, help="HTTP port (every mode: /healthz, /metrics)")

    commands.add_parser("demo", help="the whole pipeline on simulated data, in the terminal")

    p = commands.add_parser("status", help="print the last stored status; no source queries")
    p.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="only these SLOs (a grouped SLO's name: each of its members; a member: NAME[VALUE])",
    )
    p.add_argument("--json", action="store_true")

    p = commands.add_parser(
        "report", help="an SLO review over a period (SLI, budget, breaches) from the stored data"
    )
    p.add_argument("--service", metavar="S", help="only the SLOs of this service")
    p.add_argument(
        "--window",
        choices=("7d", "30d", "quarter"),
        default="7d",
        help="the last 7 or 30 days, or the calendar quarter (UTC) so far; default 7d",
    )
    p.add_argument("--format", choices=("markdown", "json", "csv", "html"), default="markdown")

    p = commands.add_parser("db", help="database maintenance")
    db_commands = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", help="apply the schema migrations (Alembic) up to head")
    return parser


class Context:
    """What a command may need, built on first use and released at the end of the command."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        """The database, its schema upgraded to the newest migration (under a lock: see db.upgrade)."""
        return self._database(migrate=True)

    @property
    def read_engine(self) -> Engine:
        """The database for a command that only reads: never migrated, refused unless it is current."""
        return self._database(migrate=False)

    def _database(self, *, migrate: bool) -> Engine:
        from bot.store import db  # SQLAlchemy and Alembic: only for the commands that use the database

        if self._engine is None:
            engine = db.make_engine(self.settings.database_url)
            try:
                (db.upgrade if migrate else db.require_current)(engine)
            except db.SchemaError as err:
                engine.dispose()
                raise UsageError(str(err), EXIT_PROBLEM) from None
            self._engine = engine
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    context: Context | None = None
    try:
        logs.configure()  # first: a bad SLO_BOT_LOG_FORMAT is said before anything else
        args = build_parser().parse_args(argv)
        context = Context(Settings.from_env())
        handler = {
            "validate": cmd_validate,
            "apply": cmd_apply,
            "check": cmd_check,
            "status": cmd_status,
            "replay": cmd_replay,
            "report": cmd_report,
            "run": cmd_run,
            "demo": cmd_demo,
            "db": cmd_db,
        }[args.command]
        return handler(args, context)
    except UsageError as err:
        print(f"slo-bot: {err}", file=sys.stderr)
        return err.code
    except ValueError as err:  # e.g. a malformed SLO_BOT_EVAL_INTERVAL
        print(f"slo-bot: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    finally:
        if context is not None:
            context.close()


def cmd_validate(args: argparse.Namespace, ctx: Context) -> int:
    from bot.catalogue import load_paths

    catalogue = load_paths(args.files)
    for problem in catalogue.problems:
        print(problem)
    if catalogue.problems:
        return EXIT_PROBLEM
    print(f"{len(catalogue.entries)} SLO(s) valid in {len(catalogue.files)} file(s)", file=sys.stderr)
    return EXIT_OK


def cmd_apply(args: argparse.Namespace, ctx: Context) -> int:
    return apply_files(args.files, ctx, prune=args.prune)


def apply_files(files: Sequence[str], ctx: Context, *, prune: bool = False, out: TextIO | None = None) -> int:
    """Validate and store `files`; what changed goes to `out` (stdout for `apply`; stderr when
    another command applies its SLO_BOT_CONFIG first, so `check --json` prints JSON alone)."""
    from sqlmodel import Session

    from bot.annotations import group_by_of
    from bot.catalogue import load_paths
    from bot.checksums import data_checksum
    from bot.store import adjustments as adjustment_store
    from bot.store import db, repo

    out = out or sys.stdout
    catalogue = load_paths(files)
    if catalogue.problems:
        for problem in catalogue.problems:
            print(problem, file=out)
        print("nothing applied", file=sys.stderr)
        return EXIT_PROBLEM
    engine = ctx.engine
    now = datetime.now(UTC)
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    with Session(engine) as session:
        db.lock_for_catalogue(session.connection())  # replicas starting together apply it at once
        for entry in catalogue.entries:
            result = repo.upsert_slo(
                session=session,
                name=entry.slo.name,
                service=entry.slo.service,
                documents=entry.documents,
                data_checksum=data_checksum(entry.slo),
                group_by=group_by_of(entry.slo.annotations),
                now=now,
            )
            counts[result] += 1
            if result != "unchanged":
                print(f"{result}: {entry.slo.name}", file=out)
        deleted = []
        if prune:
            deleted = repo.delete_slos_except(session=session, keep=[e.slo.name for e in catalogue.entries])
            for name in deleted:
                print(f"deleted: {name}", file=out)
        declared = [w.adjustment for w in catalogue.adjustments]
        adjustment_store.replace_declared(session=session, adjustments=declared, now=now, prune=prune)
        session.commit()
    print(
        f"{counts['created']} created, {counts['updated']} updated, "
        f"{counts['unchanged']} unchanged, {len(deleted)} deleted",
        file=sys.stderr,
    )
    if declared:
        print(f"{len(declared)} maintenance window(s) stored", file=sys.stderr)
    return EXIT_OK


def _known_names(engine: Engine) -> list[str]:
    """Every SLO's name: the grouped ones' and their members' too."""
    from sqlmodel import Session

    from bot.store import repo

    with Session(engine) as session:
        return [r.name for r in repo.list_slos(session=session, members=True)]


def _composites_of(engine: Engine, names: Sequence[str]) -> dict[str, str]:
    """The composite of each of `names` that is a part of one (`bot.parts.composites_of`)."""
    from sqlmodel import Session

    from bot import parts

    with Session(engine) as session:
        return parts.composites_of(session, names)


def unknown_slo_message(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    listing = f" (known: {', '.join(known[:20])}{', ...' if len(known) > 20 else ''})"
    return f"unknown SLO {name!r}{hint}" + ("" if close else listing)


def cmd_check(args: argparse.Namespace, ctx: Context) -> int:
    from bot import asof, jobs, report
    from bot.sources.pool import SourcePool

    settings = ctx.settings
    if settings.config_paths:
        code = apply_files(settings.config_paths, ctx, out=sys.stderr)
        if code != EXIT_OK:
            return code
    engine = ctx.engine
    known = _known_names(engine)
    if not known:
        raise UsageError("no SLOs in the database: run `slo-bot apply FILE...` first")
    part_of = _composites_of(engine, args.slo or ())
    for name in args.slo or ():
        if name not in known and name not in part_of:
            raise UsageError(unknown_slo_message(name, known))
    # a composite's parts are fetched, stored and evaluated with it, never alone: a part named is
    # its composite checked, and the part's own figures from that evaluation shown under it
    names = None if args.slo is None else list(dict.fromkeys(part_of.get(n, n) for n in args.slo))
    for part, whole in part_of.items():
        print(
            f"slo-bot: {part} is a part of the composite SLO {whole}: "
            f"checked {whole}, whose parts are evaluated together",
            file=sys.stderr,
        )
    now = args.at or datetime.now(UTC)
    sources = SourcePool(max_connections=settings.concurrency)
    with logs.context(tick=now.isoformat()):  # its log lines name the evaluation, as run's do
        try:
            if args.at is not None:  # a past moment: read-only, as a fresh database would see it
                outcomes = asof.evaluate_as_of(
                    engine, at=now, sources=sources, concurrency=settings.concurrency, names=names
                )
            else:
                # with Slack configured, alerts that `check` opens are queued for the running bot to post
                hooks: list[jobs.TickHook] = []
                if settings.mode != "console":
                    from bot.conversation import Conversation  # Slack's libraries load only when needed
                    from bot.slack.notify import SlackDestination

                    hooks.append(Conversation([SlackDestination(settings.default_channel)]))
                outcomes = jobs.evaluate_all(
                    engine,
                    now=now,
                    sources=sources,
                    concurrency=settings.concurrency,
                    names=names,
                    hooks=hooks,
                )
        finally:
            sources.close()
    rows = []
    for o in outcomes:
        rows.append(report.row_from_status(o.name, o.service, o.slo, o.status, o.error, o.alerts))
        own = dict(o.parts)
        for named in [p.slo for p in o.slo.parts] if o.slo is not None else []:
            if named.name in part_of and named.name in own:
                rows.append(report.row_from_status(named.name, o.service, named, own[named.name]))
    print(report.render_json(rows) if args.json else report.render_table(rows))
    kinds = {o.error_kind for o in outcomes}
    for outcome in outcomes:
        if outcome.error:
            print(f"slo-bot: {outcome.name}: {outcome.error}", file=sys.stderr)
    if kinds & {jobs.BAD_QUERY, jobs.CONFIG, jobs.INTERNAL}:
        return EXIT_PROBLEM
    return EXIT_UNAVAILABLE if jobs.UNAVAILABLE in kinds else EXIT_OK


GROUPS_NOT_REPLAYED = "a grouped SLO (slo-bot/group-by) is not replayed yet; replay an SLO of its own"


def cmd_replay(args: argparse.Namespace, ctx: Context) -> int:
    if args.end <= args.start:
        raise UsageError("--to must be after --from", EXIT_USAGE)
    engine = ctx.read_engine  # an absent or outdated database is said before the tables load

    from sqlmodel import Session

    from bot import replay, report
    from bot.catalogue.stored import slo_of
    from bot.sources.base import BadQuery, SourceError
    from bot.sources.pool import SourcePool
    from bot.store import adjustments as adjustment_store
    from bot.store import repo

    settings = ctx.settings
    with Session(engine) as session:
        records = repo.list_slos(session=session)
        exclusions = adjustment_store.load_exclusions(session=session)
    known = [r.name for r in records]
    part_of = _composites_of(engine, args.slo or ())
    for name in args.slo or ():
        if name not in known and name not in part_of:
            raise UsageError(unknown_slo_message(name, known))
    for part, whole in part_of.items():  # its alerts are its composite's: it raises none of its own
        print(f"slo-bot: {part} is a part of the composite SLO {whole}: replaying {whole}", file=sys.stderr)
    wanted = {part_of.get(n, n) for n in args.slo or ()}
    chosen = [r for r in records if not wanted or r.name in wanted]
    if not chosen:
        raise UsageError("no SLOs in the database: run `slo-bot apply FILE...` first")
    sources = SourcePool(max_connections=settings.concurrency)
    episodes: list[replay.Episode] = []
    code = EXIT_OK
    try:
        for record in chosen:
            if record.group_by:
                print(f"slo-bot: {record.name}: {GROUPS_NOT_REPLAYED}", file=sys.stderr)
                code = EXIT_PROBLEM
                continue
            try:
                slo = slo_of(record)
                since = args.start - replay.lookback(slo, args.start)
                excluded = exclusions.of(slo, since, args.end)  # maintenance windows, refunds
                history: replay.History | replay.CompositeHistory
                if slo.parts:  # each part's history, from the source or its stored buckets
                    readers = {
                        n: _stored_reader(engine, i) for n, i in _part_ids(engine, record.id or 0).items()
                    }
                    history = replay.load_composite_history(
                        slo, sources.get, since, args.end, readers.get, excluded
                    )
                else:
                    history = replay.load_history(
                        slo,
                        sources.get,
                        since,
                        args.end,
                        stored=_stored_reader(engine, record.id or 0),
                        excluded=excluded,
                    )
            except SourceError as err:
                print(f"slo-bot: {record.name}: {err}", file=sys.stderr)
                code = EXIT_PROBLEM if isinstance(err, BadQuery) else EXIT_UNAVAILABLE
                continue
            result = replay.replay(slo, history, args.start, args.end, args.step)
            spent = _breach_costs(result)
            for i, transition in enumerate(result.transitions):
                breach = result.breach_of.get(i)
                print(
                    json.dumps(report.transition_json(transition, spent, breach))
                    if args.json
                    else report.transition_line(transition, breach),
                    flush=True,
                )
            episodes += result.episodes
    finally:
        sources.close()
    print(report.render_episodes(episodes), file=sys.stderr if args.json else sys.stdout)
    return code


def _breach_costs(result: replay.Replay) -> dict[tuple[str, datetime], float | None]:
    """What each ended breach cost, on the line of its last signal's resolution: (key, at) -> cost."""
    from bot import breaches

    costs: dict[tuple[str, datetime], float | None] = {}
    for episode in result.episodes:
        last = [
            t
            for i, t in enumerate(result.transitions)
            if result.breach_of.get(i) == episode.number
            and t.event == "resolved"
            and breaches.kind_of(t.key) == episode.kind
        ]
        if episode.resolved_at is not None and last:
            costs[last[-1].key, last[-1].at] = episode.budget_spent_ratio
    return costs


def _stored_reader(engine: Engine, slo_id: int) -> Callable[[datetime, datetime], list[Bucket]]:
    from sqlmodel import Session

    from bot.store import history

    def read(start: datetime, end: datetime) -> list[Bucket]:
        with Session(engine) as session:
            return [
                b for b in history.load_buckets(session=session, slo_id=slo_id, since=start) if b.start < end
            ]

    return read


def _part_ids(engine: Engine, composite_id: int) -> dict[str, int]:
    """A composite SLO's stored parts, their ids by name (none before its first evaluation)."""
    from sqlmodel import Session

    from bot.store import groups as group_store

    with Session(engine) as session:
        found = group_store.members(session=session, group_ids=[composite_id])[composite_id]
    return {r.name: r.id for r in found if r.id is not None}


def cmd_demo(args: argparse.Namespace, ctx: Context) -> int:
    from bot.demo import run_demo

    return run_demo()


def cmd_run(args: argparse.Namespace, ctx: Context) -> int:
    from bot.store import db

    settings = ctx.settings
    try:
        with db.single_process(ctx.engine):
            if settings.config_paths:
                code = apply_files(settings.config_paths, ctx, out=sys.stderr)
                if code != EXIT_OK:
                    return code
            if not _known_names(ctx.engine):
                print(
                    "slo-bot: no SLOs yet; apply a catalogue (slo-bot apply FILE) to start", file=sys.stderr
                )
            from bot import service  # the server, the scheduler and Slack load only for `run`

            return service.run(settings, ctx.engine, args.port)
    except db.AnotherProcess as err:
        raise UsageError(str(err)) from None


def cmd_status(args: argparse.Namespace, ctx: Context) -> int:
    engine = ctx.read_engine  # first: an absent or outdated database is said before the tables load

    from sqlmodel import Session

    from bot import groups, report
    from bot.catalogue.stored import slo_of
    from bot.store import adjustments as adjustment_store
    from bot.store import breaches as breach_store
    from bot.store import repo
    from bot.store.models import BreachRecord

    rows = []
    with Session(engine) as session:
        by_slo: dict[int, list[BreachRecord]] = {}
        for record, breach in breach_store.firing_breaches(session=session):
            by_slo.setdefault(record.id or 0, []).append(breach)
        firing = {slo_id: breach_store.summaries(found) for slo_id, found in by_slo.items()}
        stored = repo.latest_snapshots(session=session)
        windows = adjustment_store.load_exclusions(session=session).adjustments
        known = [r.name for r, _ in stored]
        for name in args.names:
            if name not in known:
                raise UsageError(unknown_slo_message(name, [r.name for r, _ in stored if not r.group_id]))
        wanted = set(args.names)
        parents = {r.group_id for r, _ in stored if r.group_id}
        for record, snap in stored:
            if record.group_by and record.id in parents:  # a grouped SLO's members stand for it
                continue
            group = groups.definition_of(record.name) if record.group_id else None
            if wanted and record.name not in wanted and group not in wanted:
                continue
            try:
                slo = slo_of(record)
            except Exception:  # the definition may not build here (unset secret): show what's stored
                slo = None
            failing_since = repo.utc(record.failing_since)
            failure = (
                f"not evaluated since {failing_since:%Y-%m-%d %H:%M} UTC: {record.failure}"
                if failing_since is not None
                else None
            )
            if snap is None:
                rows.append(report.row_from_status(record.name, record.service, slo, None, failure))
                continue
            rows.append(
                report.Row(
                    slo=record.name,
                    service=record.service,
                    objective=slo.objective.target_ratio if slo else None,
                    window=slo.window.spec if slo else None,
                    evaluated_at=repo.utc(snap.evaluated_at),
                    sli=snap.sli,
                    good=snap.good,
                    total=snap.total,
                    consumed_ratio=snap.consumed_ratio,
                    remaining_ratio=snap.remaining_ratio,
                    burn_rates=json.loads(snap.burn_rates),
                    exhaustion_at=repo.utc(snap.exhaustion_at),
                    state=snap.state,
                    alerts=firing.get(record.id or 0, []),
                    error=failure or snap.error,
                    warnings=(snap.notes or "").splitlines(),
                    outlook=_outlook(session, slo, record.id, repo.status_of(snap)),
                    maintenance=_windows(windows, slo),
                )
            )
    if not args.json and not wanted:
        rows = report.fold_groups(
            rows, {r.name: tuple((r.group_by or "").split(",")) for r, _ in stored if r.group_by}
        )
    print(report.render_json(rows) if args.json else report.render_table(rows))
    return EXIT_OK


def _windows(adjustments: Sequence[Adjustment], slo: SLO | None) -> list[report.Window]:
    """The SLO's maintenance windows under way, then the next of each declaration."""
    from bot import report
    from bot.adjustments import current_and_next

    if slo is None:
        return []
    current, upcoming = current_and_next(adjustments, slo, datetime.now(UTC))
    return [
        report.Window(a.name, a.description, start, end, now)
        for now, found in ((True, current), (False, upcoming))
        for a, (start, end) in found
    ]


def _outlook(session: Session, slo: SLO | None, slo_id: int | None, status: Status | None) -> Outlook | None:
    from bot import exhaustion

    if slo is None or slo_id is None or status is None:
        return None
    return exhaustion.outlook(session, slo, slo_id, status)


def cmd_report(args: argparse.Namespace, ctx: Context) -> int:
    engine = ctx.read_engine  # read-only, beside a running `slo-bot run`; said before the tables load

    from sqlmodel import Session

    from bot import review, review_render

    with Session(engine) as session:
        known = review.services(session)
        if args.service is not None and args.service not in known:
            close = difflib.get_close_matches(args.service, known, n=1)
            hint = f"; did you mean {close[0]}?" if close else f" (services: {', '.join(known) or 'none'})"
            raise UsageError(f"no SLO belongs to a service called {args.service!r}{hint}")
        now = datetime.now(UTC).replace(microsecond=0)
        found = review.build(session, period=args.window, now=now, service=args.service)
    sys.stdout.write(review_render.render(found, args.format))
    return EXIT_OK


def cmd_db(args: argparse.Namespace, ctx: Context) -> int:
    engine = ctx.engine
    print(f"database schema at head ({engine.url.render_as_string(hide_password=True)})")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
