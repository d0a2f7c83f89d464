# frozen_string_literal: true

require "ffi"
require_relative "pseudostream/version"
require_relative "pseudostream/native"

# Ruby wrappers over libpseudostream's C ABI. Every decision (seek points,
# prefixes, ranges, validators, pacing) is the library's; these classes only
# convert values, raise Pseudostream::Error for failed calls and free the
# native handles.
#
# Handles are freed deterministically with #close (or by the block forms,
# which close in +ensure+). An FFI::AutoPointer frees a handle the program
# forgot, when the garbage collector gets to it: a safety net, not the plan.
module Pseudostream
  # A failed library call: the ps_status number, the HTTP status to answer
  # with (ps_status_http) and the library's detail (ps_last_error).
  class Error < StandardError
    NAMES = {
      Native::PS_ERR_NULL_ARG => :null_arg,
      Native::PS_ERR_PANIC => :panic,
      Native::PS_ERR_BAD_HANDLE => :bad_handle,
      Native::PS_ERR_INVALID_ARG => :invalid_arg,
      Native::PS_ERR_BUFFER_TOO_SMALL => :buffer_too_small,
      Native::PS_ERR_IO => :io,
      Native::PS_ERR_NOT_FOUND => :not_found,
      Native::PS_ERR_PERMISSION => :permission,
      Native::PS_ERR_UNSUPPORTED_FORMAT => :unsupported_format,
      Native::PS_ERR_MALFORMED_MEDIA => :malformed_media,
      Native::PS_ERR_BAD_REQUEST => :bad_request,
      Native::PS_ERR_RANGE_NOT_SATISFIABLE => :range_not_satisfiable,
      Native::PS_ERR_SOURCE_CHANGED => :source_changed,
      Native::PS_ERR_NOT_CACHED => :not_cached
    }.freeze

    attr_reader :status, :http_status, :detail

    # Raises for anything but PS_OK. Call it right after the failing call:
    # ps_last_error belongs to the calling thread and the next failure.
    def self.check(status)
      raise from_status(status) unless status == Native::PS_OK

      status
    end

    def self.from_status(status)
      new(status, Native.ps_status_http(status), Native.ps_last_error.to_s.dup)
    end

    def initialize(status, http_status, detail)
      @status = status
      @http_status = http_status
      @detail = detail
      # The detail already starts with the status's name ("not found: ...").
      super(detail.empty? ? Native.ps_strerror(status) : detail)
    end

    # The status as a symbol (:not_found, :bad_request, ...).
    def code
      NAMES.fetch(status, :unknown)
    end
  end

  # Use of a handle after #close.
  class ClosedError < StandardError; end

  # Shared plumbing of the handle classes: the native pointer inside an
  # AutoPointer, #close, and #to_ptr so a wrapper can be passed wherever the
  # C ABI takes the handle.
  class Handle
    # Calls the constructor with a slot for the new handle (ps_xxx **out)
    # and returns the handle, or raises the call's error.
    def self.out_pointer
      slot = FFI::MemoryPointer.new(:pointer)
      Error.check(yield slot)
      slot.read_pointer
    ensure
      slot&.free
    end

    # New instance, closed after the block when one is given.
    def self.scoped(handle)
      return handle unless block_given?

      begin
        yield handle
      ensure
        handle.close
      end
    end

    def initialize(pointer, releaser)
      @pointer = FFI::AutoPointer.new(pointer, releaser)
    end

    def to_ptr
      @pointer or raise ClosedError, "#{self.class.name} is closed"
    end

    def closed?
      @pointer.nil?
    end

    # Frees the native handle now. Idempotent.
    def close
      pointer = @pointer
      @pointer = nil
      pointer&.free
      nil
    end
  end

  PREFIX_MODES = {
    none: Native::PS_PREFIX_NONE,
    header: Native::PS_PREFIX_HEADER,
    init: Native::PS_PREFIX_INIT,
    full: Native::PS_PREFIX_FULL
  }.freeze

  METADATA_MODES = { off: 0, missing: 1, always: 2 }.freeze

  CUT_MODES = {
    exact: Native::PS_CUT_EXACT,
    keyframe: Native::PS_CUT_KEYFRAME
  }.freeze

  START_UNITS = {
    bytes: Native::PS_UNIT_BYTES,
    seconds: Native::PS_UNIT_SECONDS
  }.freeze

  # Both the default query names and descriptive names select a parameter.
  PARAMS = {
    start: Native::PS_PARAM_START,
    end: Native::PS_PARAM_END,
    ib: Native::PS_PARAM_INITIAL_BYTES, initial_bytes: Native::PS_PARAM_INITIAL_BYTES,
    fs: Native::PS_PARAM_FILE_START, file_start: Native::PS_PARAM_FILE_START,
    bstart: Native::PS_PARAM_BYTE_START, byte_start: Native::PS_PARAM_BYTE_START,
    bend: Native::PS_PARAM_BYTE_END, byte_end: Native::PS_PARAM_BYTE_END,
    ri: Native::PS_PARAM_BURST, burst: Native::PS_PARAM_BURST,
    rs: Native::PS_PARAM_RATE, rate: Native::PS_PARAM_RATE
  }.freeze

  def self.lookup(table, value, what)
    table.fetch(value.to_s.downcase.to_sym) do
      raise ArgumentError, "unknown #{what} #{value.inspect} (one of #{table.keys.join(', ')})"
    end
  end

  # ps_version: the library's version string.
  def self.library_version
    Native.ps_version
  end

  # The largest MP4 moov box the library reads, in bytes (default 64 MiB;
  # 0 restores it); files with a larger one are refused (415). Process-wide,
  # for every app in the process: set it once at boot, before files are
  # opened (an index already cached is not read again).
  def self.mp4_max_moov_size=(bytes)
    value = Integer(bytes.to_s, 10, exception: false)
    if value.nil? || value.negative?
      raise ArgumentError, "mp4_max_moov_size must be a non-negative number of bytes, got #{bytes.inspect}"
    end

    Error.check(Native.ps_mp4_set_moov_limit(value))
  end

  # How a host serves (ps_options). Configured once in the constructor and
  # read-only afterwards, so one instance is shared by every thread.
  #
  #   prefix:        :none, :header, :init (default) or :full
  #   start_unit:    :bytes (default) or :seconds
  #   params:        renames, e.g. { start: "ss", end: "" } ("" turns one off)
  #   burst:         pacing burst in bytes
  #   burst_seconds: pacing burst in seconds of media (via the bitrate)
  #   rate:          nil/0 (unpaced), bytes per second, or :auto / "auto" /
  #                  "auto:FACTOR" (average bitrate × FACTOR, default 1.25)
  #   client_pacing: whether ri/rs in a query may set the pacing (default true)
  #   metadata:      :off, :missing (default) or :always: when files are served
  #                  with their keyframes listed in a rewritten onMetaData
  #   cut:           :exact (default) or :keyframe: where MP4 cuts start to be
  #                  presented (the requested time, or the keyframe, for
  #                  players that ignore edit lists)
  class Options < Handle
    def self.open(**settings, &block)
      scoped(new(**settings), &block)
    end

    def initialize(prefix: :init, start_unit: :bytes, params: {}, burst: nil,
                   burst_seconds: nil, rate: nil, client_pacing: true, metadata: :missing, cut: :exact)
      super(Handle.out_pointer { |slot| Native.ps_options_new(slot) },
            Native.method(:ps_options_free))
      configure(prefix, start_unit, params, burst, burst_seconds, rate, client_pacing)
      Error.check(Native.ps_options_set_metadata(to_ptr, Pseudostream.lookup(METADATA_MODES, metadata,
                                                                             "metadata mode")))
      Error.check(Native.ps_options_set_cut_mode(to_ptr, Pseudostream.lookup(CUT_MODES, cut, "cut mode")))
    rescue StandardError
      close
      raise
    end

    private

    def configure(prefix, start_unit, params, burst, burst_seconds, rate, client_pacing)
      ptr = to_ptr
      Error.check(Native.ps_options_set_prefix_mode(ptr, Pseudostream.lookup(PREFIX_MODES, prefix, "prefix mode")))
      Error.check(Native.ps_options_set_start_unit(ptr, Pseudostream.lookup(START_UNITS, start_unit, "start unit")))
      params.each do |param, name|
        Error.check(Native.ps_options_set_param_name(ptr, Pseudostream.lookup(PARAMS, param, "parameter"), name.to_s))
      end
      Error.check(Native.ps_options_set_burst_bytes(ptr, Integer(burst))) if burst
      Error.check(Native.ps_options_set_burst_ms(ptr, (Float(burst_seconds) * 1000).round)) if burst_seconds
      apply_rate(ptr, rate) if rate
      Error.check(Native.ps_options_set_client_pacing(ptr, client_pacing ? 1 : 0))
    end

    def apply_rate(ptr, rate)
      text = rate.to_s.strip.downcase
      if (m = text.match(/\Aauto(?::(\d+(?:\.\d+)?))?\z/))
        factor = m[1] ? Float(m[1]) : 1.25
        Error.check(Native.ps_options_set_rate_auto(ptr, (factor * 1000).round))
      elsif text.match?(/\A\d+\z/)
        Error.check(Native.ps_options_set_rate(ptr, Integer(text, 10)))
      else
        raise ArgumentError, "rate must be bytes per second or auto[:FACTOR], got #{rate.inspect}"
      end
    end
  end

  # An opened media file and its keyframe index (ps_media). Immutable and
  # shareable between threads.
  class Media < Handle
    # Opens +path+; with a block, yields the media and closes it afterwards.
    def self.open(path, &block)
      pointer = Handle.out_pointer { |slot| Native.ps_media_open(path.to_s, slot) }
      scoped(new(pointer), &block)
    end

    def initialize(pointer)
      super(pointer, Native.method(:ps_media_free))
    end

    # ps_media_info as a Hash of Integers (see include/pseudostream.h).
    def info
      out = Native::MediaInfo.new
      Error.check(Native.ps_media_get_info(to_ptr, out))
      out.members.to_h { |k| [k, out[k]] }
    end

    # The media information and keyframe list as a JSON string.
    def info_json
      needed = FFI::MemoryPointer.new(:size_t)
      status = Native.ps_media_info_json(to_ptr, nil, 0, needed)
      Error.check(status) unless status == Native::PS_ERR_BUFFER_TOO_SMALL
      cap = needed.read(:size_t)
      buf = FFI::MemoryPointer.new(:char, cap)
      Error.check(Native.ps_media_info_json(to_ptr, buf, cap, needed))
      buf.read_bytes(needed.read(:size_t)).force_encoding(Encoding::UTF_8)
    ensure
      buf&.free
      needed&.free
    end
  end

  # One parsed request (ps_request).
  class Request < Handle
    # Parses a query string (without '?') under +options+ (nil: defaults).
    def self.parse(options, query, &block)
      query = query.to_s
      pointer = Handle.out_pointer do |slot|
        Native.ps_request_parse(options, query, query.bytesize, slot)
      end
      scoped(new(pointer), &block)
    end

    def initialize(pointer)
      super(pointer, Native.method(:ps_request_free))
    end
  end

  # What ps_plan_respond decided: an HTTP status and the window of the
  # plan's response to send.
  Reply = Struct.new(:status, :first, :length)

  # What to send for one request (ps_plan). Immutable.
  class Plan < Handle
    # Resolves +request+ (nil: the whole file) against +media+.
    def self.open(media, options, request, &block)
      pointer = Handle.out_pointer { |slot| Native.ps_plan_new(media, options, request, slot) }
      scoped(new(pointer), &block)
    end

    def initialize(pointer)
      super(pointer, Native.method(:ps_plan_free))
    end

    # ps_plan_info as a Hash of Integers.
    def info
      out = Native::PlanInfo.new
      Error.check(Native.ps_plan_get_info(to_ptr, out))
      out.members.to_h { |k| [k, out[k]] }
    end

    def etag
      borrowed_string { |slot| Native.ps_plan_etag(to_ptr, slot) }
    end

    def content_type
      borrowed_string { |slot| Native.ps_plan_content_type(to_ptr, slot) }
    end

    # The prefix bytes (header, codec configuration, metadata) as a String.
    def prefix
      data = FFI::MemoryPointer.new(:pointer)
      len = FFI::MemoryPointer.new(:size_t)
      Error.check(Native.ps_plan_prefix(to_ptr, data, len))
      n = len.read(:size_t)
      n.zero? ? "".b : data.read_pointer.read_bytes(n)
    ensure
      data&.free
      len&.free
    end

    # Evaluates Range and the preconditions (header values; nil = absent).
    def respond(range: nil, if_match: nil, if_none_match: nil, if_range: nil)
      out = Native::Response.new
      Error.check(Native.ps_plan_respond(to_ptr, range, if_match, if_none_match, if_range, out))
      Reply.new(out[:status], out[:first], out[:length])
    end

    # The Content-Range value for a 206 or 416 reply ("" for the others).
    def content_range(reply)
      response = Native::Response.new
      response[:status] = reply.status
      response[:first] = reply.first
      response[:length] = reply.length
      buf = FFI::MemoryPointer.new(:char, 96)
      written = FFI::MemoryPointer.new(:size_t)
      status = Native.ps_plan_content_range(to_ptr, response, buf, buf.size, written)
      if status == Native::PS_ERR_BUFFER_TOO_SMALL
        buf.free
        buf = FFI::MemoryPointer.new(:char, written.read(:size_t))
        status = Native.ps_plan_content_range(to_ptr, response, buf, buf.size, written)
      end
      Error.check(status)
      buf.read_bytes(written.read(:size_t))
    ensure
      buf&.free
      written&.free
    end

    # Where a window of the response comes from (prefix part, file range).
    def slice(first, length)
      out = Native::Slice.new
      Error.check(Native.ps_plan_slice(to_ptr, first, length, out))
      out.members.to_h { |k| [k, out[k]] }
    end

    private

    def borrowed_string
      slot = FFI::MemoryPointer.new(:pointer)
      Error.check(yield slot)
      slot.read_pointer.read_string.dup
    ensure
      slot&.free
    end
  end

  # Produces one response or one window of it (ps_stream), from one thread
  # at a time. It keeps its own reference to the bytes: the media and plan
  # it was made from may be closed while it runs.
  class Stream < Handle
    DATA = Native::PS_FILL_DATA
    WAIT = Native::PS_FILL_WAIT
    DONE = Native::PS_FILL_DONE

    def self.open(media, plan, first, length, &block)
      pointer = Handle.out_pointer { |slot| Native.ps_stream_new(media, plan, first, length, slot) }
      scoped(new(pointer), &block)
    end

    def initialize(pointer)
      super(pointer, Native.method(:ps_stream_free))
      @written = FFI::MemoryPointer.new(:size_t)
      @wait_us = FFI::MemoryPointer.new(:uint64)
      @state = FFI::MemoryPointer.new(:uint32)
    end

    # Burst bytes, then bytes per second (0 = unpaced).
    def set_pacing(burst_bytes, rate_bytes_per_s)
      Error.check(Native.ps_stream_set_pacing(to_ptr, burst_bytes, rate_bytes_per_s))
    end

    # Fills +buffer+ (an FFI::Pointer of +capacity+ bytes) as far as pacing
    # allows at +now_us+ (a monotonic clock). Returns [state, written,
    # wait_us] with state DATA, WAIT or DONE. Never sleeps.
    def fill(buffer, capacity, now_us)
      Error.check(Native.ps_stream_fill(to_ptr, buffer, capacity, now_us, @written, @wait_us, @state))
      [@state.read(:uint32), @written.read(:size_t), @wait_us.read(:uint64)]
    end

    # Bytes still to deliver.
    def remaining
      out = FFI::MemoryPointer.new(:uint64)
      Error.check(Native.ps_stream_remaining(to_ptr, out))
      out.read(:uint64)
    ensure
      out&.free
    end

    def close
      super
      [@written, @wait_us, @state].each { |p| p&.free }
      @written = @wait_us = @state = nil
    end
  end
end

require_relative "pseudostream/rack_app"
