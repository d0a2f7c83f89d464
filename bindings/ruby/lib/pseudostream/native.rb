# frozen_string_literal: true

require "ffi"

module Pseudostream
  # The parts of libpseudostream's C ABI (include/pseudostream.h) this
  # binding uses, declared one to one: every status and enum is a uint32_t,
  # offsets and times uint64_t, sizes size_t, handles opaque pointers.
  # Nothing here decides anything; the wrappers in pseudostream.rb turn
  # statuses into exceptions and free handles.
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

    # enum ps_fill_state
    PS_FILL_DATA = 0
    PS_FILL_WAIT = 1
    PS_FILL_DONE = 2

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
             :keyframe_flags_overruled, :uint32
    end

    # ps_exchange_info
    class ExchangeInfo < FFI::Struct
      layout :status, :uint32,
             :has_content_length, :uint32,
             :content_length, :uint64,
             :body_length, :uint64,
             :burst_bytes, :uint64,
             :rate_bytes_per_s, :uint64,
             :header_count, :uint32,
             :reserved, :uint32
    end

    # Functions that read files (or may) release Ruby's GVL while they run,
    # so other threads of a threaded server (puma) go on meanwhile.
    BLOCKING = { blocking: true }.freeze

    # Status strings and the last error. ps_last_error is per OS thread; a
    # Ruby thread is one OS thread, so read it right after the failing call.
    attach_function :ps_version, [], :string
    attach_function :ps_strerror, [:uint32], :string
    attach_function :ps_status_http, [:uint32], :uint32
    attach_function :ps_last_error, [], :string

    # ps_options: settings by name, strings only (NULL options: process-wide keys)
    attach_function :ps_options_new, [:pointer], :ps_status
    attach_function :ps_options_free, [:pointer], :void
    attach_function :ps_options_set, %i[pointer string string], :ps_status
    attach_function :ps_options_describe, %i[pointer size_t pointer], :ps_status

    # ps_exchange. Strings with a length are passed as :pointer (a Ruby
    # String's bytes, NULs included), not as NUL-terminated :string.
    attach_function :ps_exchange_new, %i[pointer size_t pointer size_t pointer], :ps_status
    attach_function :ps_exchange_set_header, %i[pointer pointer size_t pointer size_t], :ps_status
    attach_function :ps_exchange_wants_file, %i[pointer pointer], :ps_status
    attach_function :ps_exchange_open_path, %i[pointer string], :ps_status, **BLOCKING
    attach_function :ps_exchange_open_failed, %i[pointer int32 string], :ps_status
    attach_function :ps_exchange_respond, %i[pointer pointer], :ps_status, **BLOCKING
    attach_function :ps_exchange_get_info, %i[pointer pointer], :ps_status
    attach_function :ps_exchange_header, %i[pointer size_t pointer pointer pointer pointer], :ps_status
    attach_function :ps_exchange_detail, %i[pointer pointer], :ps_status
    attach_function :ps_exchange_fill,
                    %i[pointer pointer size_t uint64 pointer pointer pointer], :ps_status, **BLOCKING
    attach_function :ps_exchange_free, [:pointer], :void

    # ps_media, for Pseudostream::Media (information about a file)
    attach_function :ps_media_open, %i[string pointer], :ps_status, **BLOCKING
    attach_function :ps_media_free, [:pointer], :void
    attach_function :ps_media_get_info, %i[pointer pointer], :ps_status
    attach_function :ps_media_info_json, %i[pointer pointer size_t pointer], :ps_status
  end
end
