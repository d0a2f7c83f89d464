#!/usr/bin/env bash
# Installs what the .NET host binding (bindings/dotnet) and its test
# (tests/host_dotnet.rs) need on Debian 12, run as root: Mono 6.8 with the
# C# compiler and reference assemblies (mono-devel), System.Web for the 4.5
# profile, the ASP.NET FastCGI server and nginx in front of it.
# Idempotent: installs only what is missing, then checks versions.
set -euo pipefail

die() { echo "setup-dotnet: error: $*" >&2; exit 1; }

# Debian package -> a file it installs.
declare -A probe=(
  [mono-runtime]=/usr/bin/mono
  [mono-devel]=/usr/lib/mono/4.5-api/System.Web.dll
  [libmono-system-web4.0-cil]=/usr/lib/mono/4.5/System.Web.dll
  [mono-fastcgi-server4]=/usr/bin/fastcgi-mono-server4
  [nginx]=/usr/sbin/nginx
)
missing=()
for pkg in mono-runtime mono-devel libmono-system-web4.0-cil mono-fastcgi-server4 nginx; do
  [[ -e ${probe[$pkg]} ]] || missing+=("$pkg")
done

# shellcheck source=lib/apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
apt_install setup-dotnet "${missing[@]}"

# Verify.
for cmd in mono mcs fastcgi-mono-server4 nginx; do
  command -v "$cmd" >/dev/null 2>&1 || die "'$cmd' still missing after install"
done
[[ -e /usr/lib/mono/4.5-api/System.Web.dll ]] || die "System.Web reference assembly missing (mono-devel)"
mono_version=$(mono --version | head -n 1) || die "mono does not run"
nginx_version=$(nginx -v 2>&1) || die "nginx does not run"
echo "setup-dotnet: ok ($mono_version; mcs $(mcs --version | awk '{print $NF}'); $nginx_version)"
