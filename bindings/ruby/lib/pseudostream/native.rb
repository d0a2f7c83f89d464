# frozen_string_literal: true

require "ffi"

module Pseudostream
  # The C ABI of libpseudostream (include/pseudostream.h), declared one to
  # one: every status and enum is a uint32_t, offsets and times uint64_t,
  # sizes size_t, handles opaque pointers. Nothing here decides anything;
  # the wrappers in pseudostream.rb turn statuses into exceptions and free
  # handles.
  #
  # The library is loaded from $PSEUDOSTREAM_LIB when set (a path, e.g. a
  # build tree's target/release/libpseudostream.so), else the installed one
  # by its SONAME through the dynamic loader (`make install`, or the
  # libpseudostream0 package).
  module Native
    extend FFI::Library

    # The installed library's name for the dynamic loader (ABI version 0).
    SONAME = "libpseudostream.so.0"

    def self.library_path
      from_env = ENV.fetch("PSEUDOSTREAM_LIB", "")
      from_env.empty? ? SONAME : from_env
    end

    ffi_lib library_path

    # enum ps_status
    PS_OK = 0
    PS_ERR_NULL_ARG = 1
    PS_ERR_PANIC = 2
    PS_ERR_BAD_HANDLE = 3
    PS_ERR_INVALID_ARG = 4
    PS_ERR_BUFFER_TOO_SMALL = 5
    PS_ERR_IO = 6
    PS_ERR_NOT_FOUND = 7
    PS_ERR_PERMISSION = 8
    PS_ERR_UNSUPPORTED_FORMAT = 9
    PS_ERR_MALFORMED_MEDIA = 10
    PS_ERR_BAD_REQUEST = 11
    PS_ERR_RANGE_NOT_SATISFIABLE = 12
    PS_ERR_SOURCE_CHANGED = 13
    PS_ERR_NOT_CACHED = 14

    # enum ps_prefix_mode
    PS_PREFIX_NONE = 0
    PS_PREFIX_HEADER = 1
    PS_PREFIX_INIT = 2
    PS_PREFIX_FULL = 3

    # enum ps_unit
    PS_UNIT_BYTES = 0
    PS_UNIT_SECONDS = 1
    PS_UNIT_MILLISECONDS = 2

    # enum ps_fill_state
    PS_FILL_DATA = 0
    PS_FILL_WAIT = 1
    PS_FILL_DONE = 2

    # enum ps_index_origin
    PS_INDEX_METADATA = 1
    PS_INDEX_METADATA_STALE = 2
    PS_INDEX_SCANNED = 3

    # enum ps_param
    PS_PARAM_START = 0
    PS_PARAM_END = 1
    PS_PARAM_INITIAL_BYTES = 2
    PS_PARAM_FILE_START = 3
    PS_PARAM_BYTE_START = 4
    PS_PARAM_BYTE_END = 5
    PS_PARAM_BURST = 6
    PS_PARAM_RATE = 7

    # enum ps_cut_mode
    PS_CUT_EXACT = 0
    PS_CUT_KEYFRAME = 1

    typedef :uint32, :ps_status

    # ps_media_info
    class MediaInfo < FFI::Struct
      layout :format, :uint32,
             :index_origin, :uint32,
             :size, :uint64,
             :start_ms, :uint64,
             :duration_ms, :uint64,
             :bitrate_bps, :uint64,
             :keyframe_count, :uint64,
             :has_audio, :uint32,
             :has_video, :uint32,
             :video_codec, :uint32,
             :audio_codec, :uint32,
             :width, :uint32,
             :height, :uint32,
             :seek_points_from_audio, :uint32,
             :reserved, :uint32
    end

    # ps_plan_info
    class PlanInfo < FFI::Struct
      layout :length, :uint64,
             :prefix_length, :uint64,
             :file_from, :uint64,
             :file_to, :uint64,
             :start_ms, :uint64,
             :end_ms, :uint64,
             :burst_bytes, :uint64,
             :rate_bytes_per_s, :uint64,
             :whole_file, :uint32,
             :format, :uint32
    end

    # ps_response
    class Response < FFI::Struct
      layout :status, :uint32,
             :reserved, :uint32,
             :first, :uint64,
             :length, :uint64,
             :burst_bytes, :uint64,
             :rate_bytes_per_s, :uint64
    end

    # ps_slice
    class Slice < FFI::Struct
      layout :prefix_from, :uint64,
             :prefix_to, :uint64,
             :file_from, :uint64,
             :file_to, :uint64
    end

    # int32_t (*ps_read_at_fn)(void *ctx, uint64_t offset, uint8_t *buf, size_t len, size_t *out_read)
    callback :ps_read_at_fn, %i[pointer uint64 pointer size_t pointer], :int32

    # Functions that read files (or may) release Ruby's GVL while they run,
    # so other threads of a threaded server (puma) go on meanwhile.
    BLOCKING = { blocking: true }.freeze

    # Status strings and the last error. ps_last_error is per OS thread; a
    # Ruby thread is one OS thread, so read it right after the failing call.
    attach_function :ps_version, [], :string
    attach_function :ps_strerror, [:uint32], :string
    attach_function :ps_status_http, [:uint32], :uint32
    attach_function :ps_last_error, [], :string

    # ps_media
    attach_function :ps_media_open, %i[string pointer], :ps_status, **BLOCKING
    attach_function :ps_media_open_fd, %i[int32 pointer], :ps_status, **BLOCKING
    attach_function :ps_media_open_source,
                    %i[ps_read_at_fn pointer uint64 string int64 pointer], :ps_status, **BLOCKING
    attach_function :ps_media_free, [:pointer], :void
    attach_function :ps_media_get_info, %i[pointer pointer], :ps_status
    attach_function :ps_media_keyframe, %i[pointer uint64 pointer pointer], :ps_status
    attach_function :ps_media_info_json, %i[pointer pointer size_t pointer], :ps_status

    # The process-wide index cache
    attach_function :ps_cache_set_capacity, [:uint64], :ps_status
    attach_function :ps_cache_clear, [], :ps_status
    attach_function :ps_cache_stats, %i[pointer pointer pointer pointer], :ps_status

    # Process-wide MP4 limit
    attach_function :ps_mp4_set_moov_limit, [:uint64], :ps_status

    # ps_plan
    attach_function :ps_plan_new, %i[pointer pointer pointer pointer], :ps_status, **BLOCKING
    attach_function :ps_plan_free, [:pointer], :void
    attach_function :ps_plan_get_info, %i[pointer pointer], :ps_status
    attach_function :ps_plan_prefix, %i[pointer pointer pointer], :ps_status
    attach_function :ps_plan_etag, %i[pointer pointer], :ps_status
    attach_function :ps_plan_content_type, %i[pointer pointer], :ps_status
    attach_function :ps_plan_respond, %i[pointer string string string string pointer], :ps_status
    attach_function :ps_plan_content_range, %i[pointer pointer pointer size_t pointer], :ps_status
    attach_function :ps_plan_slice, %i[pointer uint64 uint64 pointer], :ps_status

    # ps_options
    attach_function :ps_options_new, [:pointer], :ps_status
    attach_function :ps_options_free, [:pointer], :void
    attach_function :ps_options_set_prefix_mode, %i[pointer uint32], :ps_status
    attach_function :ps_options_set_start_unit, %i[pointer uint32], :ps_status
    attach_function :ps_options_set_param_name, %i[pointer uint32 string], :ps_status
    attach_function :ps_options_set_burst_bytes, %i[pointer uint64], :ps_status
    attach_function :ps_options_set_burst_ms, %i[pointer uint64], :ps_status
    attach_function :ps_options_set_rate, %i[pointer uint64], :ps_status
    attach_function :ps_options_set_rate_auto, %i[pointer uint32], :ps_status
    attach_function :ps_options_set_client_pacing, %i[pointer uint32], :ps_status
    attach_function :ps_options_set_metadata, %i[pointer uint32], :ps_status
    attach_function :ps_options_set_cut_mode, %i[pointer uint32], :ps_status

    # ps_request (the query is a length-delimited byte string, not NUL-terminated)
    attach_function :ps_request_parse, %i[pointer pointer size_t pointer], :ps_status
    attach_function :ps_request_new, [:pointer], :ps_status
    attach_function :ps_request_free, [:pointer], :void
    attach_function :ps_request_set_start, %i[pointer uint32 uint64], :ps_status
    attach_function :ps_request_set_end, %i[pointer uint32 uint64], :ps_status
    attach_function :ps_request_set_prefix_mode, %i[pointer uint32], :ps_status
    attach_function :ps_request_set_initial_bytes, %i[pointer uint64], :ps_status

    # ps_stream
    attach_function :ps_stream_new, %i[pointer pointer uint64 uint64 pointer], :ps_status
    attach_function :ps_stream_set_pacing, %i[pointer uint64 uint64], :ps_status
    attach_function :ps_stream_fill,
                    %i[pointer pointer size_t uint64 pointer pointer pointer], :ps_status, **BLOCKING
    attach_function :ps_stream_remaining, %i[pointer pointer], :ps_status
    attach_function :ps_stream_free, [:pointer], :void

    # ps_pacer
    attach_function :ps_pacer_new, %i[uint64 uint64 pointer], :ps_status
    attach_function :ps_pacer_allow, %i[pointer uint64 uint64 pointer pointer], :ps_status
    attach_function :ps_pacer_consume, %i[pointer uint64], :ps_status
    attach_function :ps_pacer_free, [:pointer], :void
  end
end
