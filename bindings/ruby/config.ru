# frozen_string_literal: true

# Serves the FLV files under $PSEUDOSTREAM_MEDIA (default: the repository's
# samples/) with pseudostreaming:
#
#   puma -b tcp://127.0.0.1:8080 -t 4:4 bindings/ruby/config.ru
#   rackup -p 8080 bindings/ruby/config.ru
#
# Settings, all optional:
#   PSEUDOSTREAM_MEDIA          media root directory
#   PSEUDOSTREAM_START_UNIT     bytes (default) or seconds
#   PSEUDOSTREAM_PREFIX         none, header, init (default) or full
#   PSEUDOSTREAM_BURST          pacing burst in bytes
#   PSEUDOSTREAM_BURST_SECS     pacing burst in seconds of media
#   PSEUDOSTREAM_RATE           bytes per second, or auto[:FACTOR]; unset: unpaced
#   PSEUDOSTREAM_CLIENT_PACING  1 (default): ri/rs may set pacing; 0: they may not
#   PSEUDOSTREAM_METADATA       off, missing (default) or always: keyframes listed in a rewritten onMetaData
#   PSEUDOSTREAM_CUT            exact (default) or keyframe: where MP4 cuts start to be presented
#   PSEUDOSTREAM_MP4_MAX_MOOV_SIZE  largest MP4 moov read, bytes (default 64 MiB); larger files get 415
#   PSEUDOSTREAM_PARAMS         renames, e.g. "start=ss,end=es" ("ib=" turns ib off)
#   PSEUDOSTREAM_LIB            a libpseudostream.so to use instead of the installed one

$LOAD_PATH.unshift(File.expand_path("lib", __dir__))
require "pseudostream"

setting = ->(name) { ENV.fetch(name, "").strip.then { |v| v.empty? ? nil : v } }

# Process-wide: set before the app opens any file.
moov = setting.call("PSEUDOSTREAM_MP4_MAX_MOOV_SIZE")
Pseudostream.mp4_max_moov_size = moov if moov

params = setting.call("PSEUDOSTREAM_PARAMS").to_s.split(",").to_h do |pair|
  name, value = pair.split("=", 2)
  [name.strip, value.to_s.strip]
end

app = Pseudostream::RackApp.new(
  root: setting.call("PSEUDOSTREAM_MEDIA") || File.expand_path("../../samples", __dir__),
  start_unit: setting.call("PSEUDOSTREAM_START_UNIT") || :bytes,
  prefix: setting.call("PSEUDOSTREAM_PREFIX") || :init,
  burst: setting.call("PSEUDOSTREAM_BURST"),
  burst_seconds: setting.call("PSEUDOSTREAM_BURST_SECS"),
  rate: setting.call("PSEUDOSTREAM_RATE"),
  client_pacing: setting.call("PSEUDOSTREAM_CLIENT_PACING") != "0",
  metadata: setting.call("PSEUDOSTREAM_METADATA") || :missing,
  cut: setting.call("PSEUDOSTREAM_CUT") || :exact,
  params: params
)

run app
