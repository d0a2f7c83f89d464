"""Imported by the benchmark scripts' Python (PYTHONPATH=scripts/lib, run
from the repository's root): the keyframes their request mixes seek to, and
the wrk scripts that go round a mix."""

import json
import subprocess


def keyframe_tails(media):
    """The keyframes of the last ~20 s of media (small tails) and of its
    first ~20 s (large tails), as the example CLI's info lists them."""
    info = json.loads(subprocess.check_output(
        ["target/release/examples/pseudostream", "info", media]))
    kf = info["keyframes"]
    n = len(kf)
    return kf[n - 10:n - 1], kf[1:10]


def write_wrk_script(path, values, request):
    """A wrk script at path whose requests go round values (numbers or
    strings); request is a Lua expression of the value v."""
    literals = ", ".join('"%s"' % v if isinstance(v, str) else str(v) for v in values)
    with open(path, "w") as f:
        f.write("local values = {%s}\n" % literals)
        f.write("local i = 0\n")
        f.write("request = function()\n  i = i + 1\n"
                "  local v = values[(i %% #values) + 1]\n  return %s\nend\n" % request)
