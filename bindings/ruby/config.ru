# frozen_string_literal: true

# Serves the FLV and MP4 files under $PSEUDOSTREAM_MEDIA (default: the
# repository's samples/) with pseudostreaming:
#
#   puma -b tcp://127.0.0.1:8080 -t 4:4 bindings/ruby/config.ru
#   rackup -p 8080 bindings/ruby/config.ru
#
# Settings, all optional:
#   PSEUDOSTREAM_MEDIA   media root directory
#   PSEUDOSTREAM_LIB     a libpseudostream.so to use instead of the installed one
#   PSEUDOSTREAM_<KEY>   any library setting by its key or an alias, upper
#                        case: PSEUDOSTREAM_START_UNIT=seconds,
#                        PSEUDOSTREAM_RATE=auto:1.25, PSEUDOSTREAM_CORS='*',
#                        PSEUDOSTREAM_CACHE_CONTROL=max-age=3600, ... (the
#                        keys: `pseudostream help`, or README.md). Unset ones
#                        keep the library's defaults. Older names still
#                        read: PSEUDOSTREAM_BURST_SECS (burst_seconds) and
#                        PSEUDOSTREAM_PARAMS="start=ss,end=es" (one param each).

$LOAD_PATH.unshift(File.expand_path("lib", __dir__))
require "pseudostream"

media = ENV.fetch("PSEUDOSTREAM_MEDIA", "").strip
media = File.expand_path("../../samples", __dir__) if media.empty?

# The PSEUDOSTREAM_<KEY> settings are read by the app (environment: ENV).
run Pseudostream::RackApp.new(root: media)
