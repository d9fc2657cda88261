"""The routes compiled into Asterisk's native dialplan (pure: a routing table in, text out).

    [<inbound context>]            every form of every tracking number, then the unknown ones
    [appliance-entry-<route id>]   business hours: the first open step wins (calls/routing.py);
                                   only for routes with hours or a dynamic step
    [appliance-connect-<route id>] recording, announcement, Dial (simultaneous or in turn)
    [appliance-restricted-<account>] the digit forms of the callers on the account's restrict
                                   list: never executed, only looked up (DIALPLAN_EXISTS)

Every dialplan step of a call costs Asterisk a channel snapshot that its CDR engine and AMI
process (measured: about 0.7 ms of CPU per call for a route of fifteen steps), so the compiled
route takes as few steps as it can: a handful before Dial.

Calls never wait for the controller: the compiled text is Asterisk's own dialplan, loaded from
the routes file. Only a route marked dynamic (or claimed by a plugin) asks the controller
first (FastAGI), and takes its compiled decision when the answer is missing, late or not
one of the compiled routes.
Everything written here is an id, a validated name or a fixed word: no value an admin or a
caller typed reaches the text without passing routing.py's patterns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from appliance.calls import schedule
from appliance.calls import variables as var
from appliance.calls.model import NumberInfo, RoutingTable
from appliance.calls.routing import (
    Connect,
    HoursChain,
    InvalidRoute,
    RoutePlan,
    connect,
    hours_chain,
)
from appliance.numbers import dialled_forms
from appliance.privacy.restrict import caller_forms
from appliance.vocabulary import RecordingMode

HEADER = "; Compiled by the appliance from its routing database. Do not edit: it is rewritten.\n"
CONTEXT_NAME = re.compile(r"[A-Za-z0-9_-]{1,79}")
AGI_URL = re.compile(r"agi://[0-9.]{7,15}:[0-9]{1,5}")
CAUSE_UNALLOCATED, CAUSE_NO_CIRCUIT = 1, 34
DYNAMIC_SCRIPT = "dynamic"  # the FastAGI script routes marked dynamic ask (calls/dynamic.py)


@dataclass(frozen=True)
class Settings:
    inbound_context: str
    agi_url: str  # e.g. agi://127.0.0.1:573, for routes marked dynamic
    # seconds a dynamic route waits for the controller before it takes its compiled decision
    # (the controller's own budget, agi.request_timeout, plus a margin: it answers first)
    agi_deadline: float = 2.0

    def __post_init__(self) -> None:
        if not CONTEXT_NAME.fullmatch(self.inbound_context):
            raise ValueError(f"{self.inbound_context!r} is not a dialplan context name")
        if not AGI_URL.fullmatch(self.agi_url):
            raise ValueError(f"{self.agi_url!r} is not agi://ADDRESS:PORT")
        if not 0 < self.agi_deadline <= 60:
            raise ValueError(f"{self.agi_deadline!r} is not a deadline of 0 to 60 seconds")


@dataclass(frozen=True)
class Compiled:
    text: str
    problems: tuple[str, ...]  # routes that could not be compiled as asked, and why


def compile_routes(table: RoutingTable, settings: Settings) -> Compiled:
    entries = {plan.id: plan for plan in map(table.entry, table.numbers) if plan is not None}
    if table.default is not None:
        entries[table.default.id] = table.default
    chains = {route_id: hours_chain(plan) for route_id, plan in sorted(entries.items())}
    # where a call entering a route goes first: its hours (or dynamic step), else connecting it
    asks = {r for r, plan in entries.items() if table.dynamic(plan) or chains[r].steps}
    first = {r: f"{var.ENTRY if r in asks else var.CONNECT_CTX}{r}" for r in entries}
    problems = [problem for chain in chains.values() for problem in chain.problems]
    chunks = [HEADER, _inbound(table, settings.inbound_context, first, problems)]
    chunks += [_restricted(account, e164s) for account, e164s in sorted(table.restricted.items())]
    for route_id, chain in chains.items():
        if first[route_id].startswith(var.ENTRY):
            plan = entries[route_id]
            chunks.append(_entry(plan, chain, settings, table.dynamic(plan)))
    for plan in sorted(table.routes.values(), key=lambda p: p.id):
        paused = plan.account_id in table.paused_accounts
        try:
            chunks.append(_connect(connect(plan, recording_paused=paused), plan.name))
        except InvalidRoute as exc:
            problems.append(f"route {plan.name!r}: {exc}; its calls are refused")
            chunks.append(_context(f"{var.CONNECT_CTX}{plan.id}", [f"Hangup({CAUSE_NO_CIRCUIT})"]))
    return Compiled("\n".join(chunks), tuple(problems))


# the inbound context ----------------------------------------------------------------------------
def _inbound(table: RoutingTable, context: str, first: dict[int, str], problems: list[str]) -> str:
    lines = [f"[{context}]"]
    owners: dict[str, list[NumberInfo]] = {}
    for number in table.numbers:
        for form in dialled_forms(number.e164):
            owners.setdefault(form, []).append(number)
    for form, numbers in owners.items():
        if len(numbers) > 1:
            shared = ", ".join(n.e164 for n in numbers)
            problems.append(f"{form} could be any of {shared}: calls to it take the default route")
            continue
        entry = table.entry(numbers[0])
        target = first[entry.id] if entry else None
        check = _check(table, numbers[0].account_id)
        lines += _extension(form, numbers[0].e164, numbers[0].id, target, check)
    digits = "${FILTER(0-9,${EXTEN})}"
    default = first[table.default.id] if table.default else None
    check = _check(table, table.default.account_id if table.default else None)
    lines += _extension("_X.", digits, 0, default, check)
    lines += _extension("_+X.", f"+{digits}", 0, default, check)
    return "\n".join(lines) + "\n"


def _extension(
    exten: str, dialled: str, number_id: int, target: str | None, check: str = ""
) -> list[str]:
    """One form of a number: tag the call, then its route (or unallocated: no route at all)."""
    then = f"Goto({target},s,1)" if target else f"Hangup({CAUSE_UNALLOCATED})"
    return [
        f"exten => {exten},1,Set(CHANNEL(hangup_handler_push)={var.HANGUP},s,1)",
        f" same => n,MSet({var.DNID}={dialled},{var.NUMBER}={number_id}{check})",
        f" same => n,{then}",
    ]


# the restrict list ------------------------------------------------------------------------------
def _check(table: RoutingTable, account_id: int | None) -> str:
    """The MSet part that marks a restricted caller (no extra step): the caller ID is
    filtered to digits before it is looked up, so what a caller sends is never dialplan."""
    if account_id is None or not table.restricted.get(account_id):
        return ""
    caller = "${FILTER(0-9,${CALLERID(num)})}"
    return f",{var.RESTRICTED}=${{DIALPLAN_EXISTS({var.RESTRICTED_CTX}{account_id},{caller},1)}}"


def _restricted(account_id: int, e164s: tuple[str, ...]) -> str:
    forms = dict.fromkeys(form for e164 in sorted(e164s) for form in caller_forms(e164))
    lines = [f"[{var.RESTRICTED_CTX}{account_id}]"]
    lines += [f"exten => {form},1,NoOp()" for form in forms]
    return "\n".join(lines) + "\n"


# which route ------------------------------------------------------------------------------------
def _entry(plan: RoutePlan, chain: HoursChain, settings: Settings, dynamic: bool) -> str:
    steps: list[str] = []
    if dynamic:
        steps += _dynamic_step(plan, settings)
    for index, step in enumerate(chain.steps):
        if index == 1:
            steps.append(f"Set({var.AFTER_HOURS}=yes)")
        target = f"{var.CONNECT_CTX}{step.route.id},s,1"
        for window in step.windows:
            for day, first, last in schedule.minute_ranges(window):
                times = f"{_clock(first)}-{_clock(last)}"
                steps.append(f"GotoIfTime({times},{schedule.DAYS[day]},*,*,{step.zone}?{target})")
    if len(chain.steps) == 1:
        steps.append(f"Set({var.AFTER_HOURS}=yes)")
    steps.append(f"Goto({var.CONNECT_CTX}{chain.final.id},s,1)")
    # the deadline passed while the controller was silent: Asterisk ends the AGI and comes
    # here (extension T), to the compiled decision
    late = ["exten => T,1,Goto(s,compiled)"] if dynamic else []
    return _context(f"{var.ENTRY}{plan.id}", steps, comment=plan.name, after=late)


def _dynamic_step(plan: RoutePlan, settings: Settings) -> list[str]:
    """Ask the controller; take its answer only when complete (ready flag, set last) and
    naming a compiled route; otherwise go on with the compiled decision. Asterisk itself
    bounds the wait (an absolute timeout that ends the AGI, extension T): it would wait
    for ever on a connection the kernel accepted for a controller that is stopped, stuck
    or out of descriptors."""
    chosen = f"${{{var.CONNECT}}}"
    target = f"{var.CONNECT_CTX}{chosen},s,1"
    return [
        f"MSet(AGIEXITONHANGUP=yes,TIMEOUT(absolute)={settings.agi_deadline:g})",
        f"AGI({settings.agi_url}/{DYNAMIC_SCRIPT},{plan.id},${{CHANNEL(linkedid)}})",
        "Set(TIMEOUT(absolute)=0)",
        f'GotoIf($["${{{var.READY}}}" != "1"]?compiled)',
        f"Set({var.CONNECT}=${{FILTER(0-9,{chosen})}})",
        f"Set({var.AFTER_HOURS}=${{FILTER(a-z,${{{var.AFTER_HOURS}}})}})",
        f"GotoIf($[${{DIALPLAN_EXISTS({target})}}]?{target})",
        f"(compiled)Set({var.AFTER_HOURS}=)",
    ]


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


# connecting -------------------------------------------------------------------------------------
def _connect(plan: Connect, name: str) -> str:
    """Tag the call with its route and tell the controller (AMI user event), then record,
    announce and dial."""
    mode = plan.recording.value
    report = ",".join(
        (
            var.EVENT_ROUTE,
            f"Route: {plan.route_id}",
            f"Number: ${{{var.NUMBER}}}",
            f"Dialled: ${{{var.DNID}}}",
            f"AfterHours: ${{{var.AFTER_HOURS}}}",
            f"Recording: {mode}",
            f"Restricted: ${{{var.RESTRICTED}}}",
        )
    )
    steps = [f"MSet({var.ROUTE}={plan.route_id},{var.RECORDING}={mode})", f"UserEvent({report})"]
    if plan.recording == RecordingMode.ON_DEMAND:
        steps.append(f"Set(DYNAMIC_FEATURES={var.RECORD_FEATURE})")
    if plan.recording == RecordingMode.ALWAYS or plan.consent_prompt:
        opt_out = "yes" if plan.consent_opt_out else "no"
        start = "yes" if plan.recording == RecordingMode.ALWAYS else "no"
        steps.append(f"Gosub({var.RECORD_SUB},s,1({plan.consent_prompt},{opt_out},{start}))")
    if plan.announcement:
        steps.append(f"Playback({plan.announcement})")
    for index, dial in enumerate(plan.dials):
        if index:
            steps.append('GotoIf($["${DIALSTATUS}" = "ANSWER"]?done)')
        steps.append(f"Dial({dial},{plan.ring_timeout},{plan.dial_options})")
    if not plan.dials:
        steps.append(f"Hangup({CAUSE_NO_CIRCUIT})")
    steps.append("(done)Hangup()")
    return _context(f"{var.CONNECT_CTX}{plan.route_id}", steps, comment=name)


def _context(name: str, steps: list[str], comment: str = "", after: list[str] | None = None) -> str:
    """A context with extension s (and the lines `after`, other extensions); a step written
    '(label)App()' carries a priority label."""
    note = f"  ; {_comment(comment)}" if comment else ""
    lines = [f"[{name}]{note}"]
    for index, step in enumerate(steps):
        label = ""
        if step.startswith("("):
            label, step = step[: step.index(")") + 1], step[step.index(")") + 1 :]
        priority = "1" if index == 0 else "n"
        prefix = "exten => s," if index == 0 else " same => "
        lines.append(f"{prefix}{priority}{label},{step}")
    return "\n".join([*lines, *(after or [])]) + "\n"


def _comment(text: str) -> str:
    """Route names are free text: in a comment they keep printable characters only, on one
    line, without ';' (which could open a block comment) or '\\' (an escape)."""
    return "".join(ch if ch.isprintable() and ch not in ";\\" else "?" for ch in text)[:80]
