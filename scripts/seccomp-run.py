#!/usr/bin/python3
"""Runs a command under the system-call filter a systemd unit declares, as systemd would apply it.

    seccomp-run.py UNIT_FILE -- COMMAND [ARG...]

Reads the unit's SystemCallFilter= lines in order (the first without "~" makes an allow list whose other calls
kill the process with SIGSYS; "~" lines take calls out of it, later plain lines add them back), expands @groups
with `systemd-analyze syscall-filter` (systemd's own lists), keeps the calls systemd always allows (execve, exit,
exit_group, getrlimit, rt_sigreturn, sigreturn), sets no_new_privs as NoNewPrivileges=yes does, loads the filter
with libseccomp (python3-seccomp) and execs the command. A call outside the filter kills the command with
SIGSYS, which is how coordd died under the shipped unit. Exit 64 on a usage error, 69 when a tool is missing.
"""
import os
import subprocess
import sys

ALWAYS = {"execve", "exit", "exit_group", "getrlimit", "rt_sigreturn", "sigreturn"}


def group(name, seen):
    """The system calls of a systemd syscall group, nested groups expanded."""
    if name in seen:
        return set()
    seen.add(name)
    out = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager", name],
                         check=True, capture_output=True, text=True).stdout
    calls = set()
    for line in out.splitlines()[1:]:
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        calls |= group(entry, seen) if entry.startswith("@") else {entry}
    return calls


def expand(items):
    calls = set()
    for item in items:
        calls |= group(item, set()) if item.startswith("@") else {item}
    return calls


def unit_filter(path):
    allowed, allow_list = None, False
    with open(path) as unit:
        for raw in unit:
            line = raw.strip()
            if not line.startswith("SystemCallFilter="):
                continue
            value = line.split("=", 1)[1].strip()
            deny = value.startswith("~")
            items = value.lstrip("~").split()
            if allowed is None:
                allow_list = not deny
                allowed = set()
            if allow_list:
                allowed = allowed - expand(items) if deny else allowed | expand(items)
            else:
                sys.exit("seccomp-run: only allow-list units are modelled (the first SystemCallFilter= without ~)")
    if allowed is None:
        sys.exit("seccomp-run: the unit has no SystemCallFilter=")
    return allowed | ALWAYS


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        print(__doc__, file=sys.stderr)
        sys.exit(64)
    try:
        import seccomp
    except ImportError:
        print("seccomp-run: python3-seccomp is not installed", file=sys.stderr)
        sys.exit(69)
    allowed = unit_filter(sys.argv[1])
    f = seccomp.SyscallFilter(defaction=seccomp.KILL_PROCESS)
    for call in sorted(allowed):
        try:
            f.add_rule(seccomp.ALLOW, call)
        except (RuntimeError, ValueError, OSError):
            pass  # a name this architecture does not have
    f.set_attr(seccomp.Attr.CTL_NNP, 1)
    f.load()
    os.execvp(sys.argv[3], sys.argv[3:])


if __name__ == "__main__":
    main()
