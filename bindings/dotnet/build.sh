#!/usr/bin/env bash
# Builds the .NET binding with Mono's C# compiler (Debian: mono-devel):
#   target/dotnet/bin/Pseudostream.dll      P/Invoke layer (no System.Web)
#   target/dotnet/bin/Pseudostream.Web.dll  the ASP.NET handler
#   target/dotnet/web.config                the handler's registration (a copy)
#   target/dotnet/probe/HandleProbe.exe     the P/Invoke layer's memory check
# Usage: bindings/dotnet/build.sh [OUT_DIR]   (default: target/dotnet)
#   target/dotnet/bin/Pseudostream.dll.config  maps "pseudostream" to the
#                                           installed libpseudostream.so.0
# libpseudostream itself is installed (make install, or libpseudostream0);
# PSEUDOSTREAM_LIB=target/release/libpseudostream.so uses a build tree's.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/target/dotnet}

command -v mcs >/dev/null 2>&1 || {
    echo "build.sh: mcs not found: run scripts/setup-dotnet.sh" >&2
    exit 1
}
mkdir -p "$out/bin"

flags=(-target:library -sdk:4.5 -optimize+ -debug- -warnaserror+ -nologo)
mcs "${flags[@]}" -out:"$out/bin/Pseudostream.dll" "$here/Pseudostream.Native.cs"
mcs "${flags[@]}" -out:"$out/bin/Pseudostream.Web.dll" \
    -r:System.Web.dll -r:System.Configuration.dll -r:"$out/bin/Pseudostream.dll" \
    "$here/PseudostreamHandler.cs"
# Mono's name for the library: the installed one, by its SONAME.
printf '%s\n' '<configuration>' \
    '  <dllmap dll="pseudostream" target="libpseudostream.so.0" />' \
    '</configuration>' >"$out/bin/Pseudostream.dll.config"
cp "$here/web.config" "$out/web.config"
# The P/Invoke layer's own memory check (run by tests/host_dotnet.rs), kept out of bin/.
mkdir -p "$out/probe"
cp "$out/bin/Pseudostream.dll" "$out/bin/Pseudostream.dll.config" "$out/probe/"
mcs -target:exe -sdk:4.5 -optimize+ -debug- -warnaserror+ -nologo -out:"$out/probe/HandleProbe.exe" \
    -r:"$out/probe/Pseudostream.dll" "$here/HandleProbe.cs"
echo "built $out/bin/Pseudostream.dll, $out/bin/Pseudostream.Web.dll, $out/probe/HandleProbe.exe"
