# Actions runner release checks for the image build (sourced; inlined into
# image/components/actions-runner.yml at render time, and run by test/image.test.ts).
# Installs a runner release only if its SHA-256 is the one GitHub publishes in the release notes
# (`<!-- BEGIN SHA linux-x64 -->HASH<!-- END SHA linux-x64 -->`), equals the pinned one if any, and its
# version is at least the minimum GitHub still accepts. Every refusal fails the build.

RUNNER_RELEASES_API=${RUNNER_RELEASES_API:-https://api.github.com/repos/actions/runner/releases}
RUNNER_DOWNLOAD_BASE=${RUNNER_DOWNLOAD_BASE:-https://github.com/actions/runner/releases/download}

rr_die() {
  echo "actions-runner: $*" >&2
  return 1
}

# runner_platform [MACHINE]: the runner's package platform for a `uname -m` value.
runner_platform() {
  case ${1:-$(uname -m)} in
    x86_64 | amd64) echo linux-x64 ;;
    aarch64 | arm64) echo linux-arm64 ;;
    *) rr_die "unsupported machine ${1:-$(uname -m)}" ;;
  esac
}

# version_at_least VERSION MINIMUM: both x.y.z; true when VERSION >= MINIMUM.
version_at_least() {
  [[ $1 =~ ^[0-9]+\.[0-9]+\.[0-9]+$ && $2 =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || return 1
  [[ $(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1) == "$2" ]]
}

# published_sha256 NOTES PLATFORM: the one SHA-256 the release notes give for PLATFORM (lowercase).
published_sha256() {
  local found
  found=$(sed -n "s/.*<!-- BEGIN SHA $2 -->\([0-9a-fA-F]\{64\}\)<!-- END SHA $2 -->.*/\1/p" <<<"$1" |
    tr 'A-F' 'a-f' | sort -u)
  [[ -n $found && $found != *$'\n'* ]] || rr_die "release notes give no single SHA-256 for $2" || return 1
  printf '%s\n' "$found"
}

# install_runner VERSION PINNED_SHA256 MINIMUM DIR USER: VERSION is `latest` or x.y.z; PINNED_SHA256
# is `none` or the expected hash of this machine's package.
install_runner() {
  local version=$1 pinned=${2,,} minimum=$3 dir=$4 user=$5
  local platform url release tag notes published file tmp actual
  platform=$(runner_platform "${RUNNER_MACHINE:-}") || return 1
  if [[ $version == latest ]]; then url="$RUNNER_RELEASES_API/latest"; else url="$RUNNER_RELEASES_API/tags/v$version"; fi
  release=$(curl -fsSL --retry 5 -H 'Accept: application/vnd.github+json' "$url") ||
    rr_die "cannot read the release at $url" || return 1
  tag=$(jq -r '.tag_name // "" | ltrimstr("v")' <<<"$release")
  notes=$(jq -r '.body // ""' <<<"$release")
  [[ $tag =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || rr_die "unexpected release tag '$tag'" || return 1
  [[ $version == latest || $version == "$tag" ]] || rr_die "asked for $version, the release is $tag" || return 1
  version_at_least "$tag" "$minimum" ||
    rr_die "runner $tag is older than the minimum version $minimum that GitHub accepts" || return 1
  published=$(published_sha256 "$notes" "$platform") || return 1
  if [[ $pinned != none && $pinned != "$published" ]]; then
    rr_die "pinned SHA-256 $pinned differs from the one published for $tag $platform ($published)" || return 1
  fi
  file="actions-runner-$platform-$tag.tar.gz"
  tmp=$(mktemp -d)
  curl -fsSL --retry 5 -o "$tmp/$file" "$RUNNER_DOWNLOAD_BASE/v$tag/$file" ||
    rr_die "cannot download $file" || return 1
  actual=$(sha256sum "$tmp/$file" | cut -d ' ' -f 1)
  if [[ $actual != "$published" ]]; then
    rm -rf "$tmp"
    rr_die "checksum mismatch for $file: got $actual, GitHub publishes $published" || return 1
  fi
  install -d -m 0755 "$dir"
  tar -xzf "$tmp/$file" -C "$dir"
  rm -rf "$tmp"
  printf '%s\n' "$tag" >"$dir/.runner-fleet-version"
  chown -R "$user:$(id -gn "$user")" "$dir"
  echo "actions-runner: installed $tag ($platform, sha256 $actual) in $dir"
}
