"""A strict reader of the calendar invitations in our mails (RFC 5545, and RFC 5546 for the methods): it
refuses what a lenient parser such as icalendar's would accept and a stricter calendar could refuse or
misread (bare line ends, lines over 75 octets, unescaped separators in text, a TZID without its
VTIMEZONE, an iTIP message without the properties its method requires)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_NAME = re.compile(r"[A-Za-z0-9-]+")
_PARAM_TEXT = re.compile(r'[^";:,\x00-\x08\x0a-\x1f\x7f]*')
_QUOTED = re.compile(r'"[^"\x00-\x08\x0a-\x1f\x7f]*"')
# TEXT (3.3.11): a backslash only before \ ; , n N; ; and , only escaped.
_TEXT = re.compile(r"(?:[^\\;,]|\\[\\;,nN])*")
_TEXT_PROPERTIES = frozenset({"SUMMARY", "LOCATION", "DESCRIPTION", "COMMENT"})
_UTC = re.compile(r"\d{8}T\d{6}Z")
_LOCAL = re.compile(r"\d{8}T\d{6}")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


@dataclass
class Property:
    name: str
    params: dict[str, str]
    value: str


@dataclass
class Component:
    name: str
    properties: list[Property] = field(default_factory=list)
    children: list[Component] = field(default_factory=list)

    def all(self, name: str) -> list[Property]:
        return [p for p in self.properties if p.name == name]

    def one(self, name: str) -> Property:
        found = self.all(name)
        assert len(found) == 1, f"{self.name} needs exactly one {name}, has {len(found)}"
        return found[0]

    def walk(self, name: str) -> list[Component]:
        found = [self] if self.name == name else []
        for child in self.children:
            found += child.walk(name)
        return found


def unescape(value: str) -> str:
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def content_lines(data: bytes) -> list[str]:
    """The unfolded lines, after checking the folding (3.1)."""
    assert data.endswith(b"\r\n"), "the last line must end in CRLF"
    physical = data[:-2].split(b"\r\n")
    lines: list[bytes] = []
    for number, line in enumerate(physical, 1):
        assert b"\r" not in line and b"\n" not in line, f"line {number}: a bare CR or LF"
        assert len(line) <= 75, f"line {number}: {len(line)} octets, more than 75"
        assert line, f"line {number}: empty"
        if line[:1] in (b" ", b"\t"):
            assert lines, "the first line is a continuation"
            lines[-1] += line[1:]
        else:
            lines.append(line)
    return [line.decode("utf-8") for line in lines]  # whole lines are UTF-8 once unfolded


def parse_line(line: str) -> Property:
    match = _NAME.match(line)
    assert match, f"no property name: {line!r}"
    name, rest = match.group(0).upper(), line[match.end() :]
    params: dict[str, str] = {}
    while rest.startswith(";"):
        pname = _NAME.match(rest, 1)
        assert pname and rest[pname.end() : pname.end() + 1] == "=", f"bad parameter in {line!r}"
        position = pname.end() + 1
        values = []
        while True:
            found = _QUOTED.match(rest, position) or _PARAM_TEXT.match(rest, position)
            assert found is not None
            values.append(found.group(0))
            position = found.end()
            if rest[position : position + 1] != ",":
                break
            position += 1
        params[pname.group(0).upper()] = ",".join(values)
        rest = rest[position:]
    assert rest.startswith(":"), f"no ':' after the parameters in {line!r}"
    value = rest[1:]
    assert not _CONTROL.search(value), f"a control character in {name}"
    if name in _TEXT_PROPERTIES:
        assert _TEXT.fullmatch(value), f"{name} has an unescaped separator or backslash: {value!r}"
    return Property(name, params, value)


def parse(data: bytes) -> Component:
    """The calendar object, checked line by line and then as an iTIP message."""
    stack: list[Component] = []
    root: Component | None = None
    for line in content_lines(data):
        prop = parse_line(line)
        if prop.name == "BEGIN":
            component = Component(prop.value.upper())
            if stack:
                stack[-1].children.append(component)
            else:
                assert root is None, "more than one object"
                root = component
            stack.append(component)
        elif prop.name == "END":
            assert stack and stack[-1].name == prop.value.upper(), f"END:{prop.value} does not match"
            stack.pop()
        else:
            assert stack, f"{prop.name} outside of any component"
            stack[-1].properties.append(prop)
    assert root is not None and not stack, "unbalanced BEGIN/END"
    _check(root)
    return root


def _check(calendar: Component) -> None:
    assert calendar.name == "VCALENDAR"
    assert calendar.one("VERSION").value == "2.0"
    calendar.one("PRODID")
    method = calendar.one("METHOD").value
    zones = {zone.one("TZID").value for zone in calendar.walk("VTIMEZONE")}
    for zone in calendar.walk("VTIMEZONE"):
        assert zone.walk("STANDARD") or zone.walk("DAYLIGHT"), "a VTIMEZONE without rules"
    events = calendar.walk("VEVENT")
    assert events, "no VEVENT"
    for event in events:
        event.one("UID")
        assert _UTC.fullmatch(event.one("DTSTAMP").value), "DTSTAMP must be a UTC time"
        for name in ("DTSTART", "DTEND"):
            prop = event.one(name)
            if "TZID" in prop.params:
                assert prop.params["TZID"] in zones, f"{name}: TZID {prop.params['TZID']} without VTIMEZONE"
                assert _LOCAL.fullmatch(prop.value), f"{name} with TZID must be a local time"
            else:
                assert _UTC.fullmatch(prop.value), f"{name} must be UTC or carry a TZID"
        assert event.one("DTEND").value > event.one("DTSTART").value
        assert int(event.one("SEQUENCE").value) >= 0
        if method in ("REQUEST", "CANCEL"):  # RFC 5546 3.2.2 and 3.2.5
            assert event.one("ORGANIZER").value.lower().startswith("mailto:")
            assert event.all("ATTENDEE"), f"METHOD:{method} needs an ATTENDEE"
        status = event.one("STATUS").value
        if method == "CANCEL":
            assert status == "CANCELLED", "a CANCEL must say STATUS:CANCELLED"
        else:
            assert status != "CANCELLED"
