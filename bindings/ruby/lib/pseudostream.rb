# frozen_string_literal: true

require "ffi"
require_relative "pseudostream/version"
require_relative "pseudostream/native"

# Ruby wrappers over libpseudostream's C ABI. Every decision (the answer's
# status, headers and body, seek points, ranges, validators, CORS, pacing)
# and every default is the library's; these classes only convert values,
# raise Pseudostream::Error for failed calls and free the native handles.
#
# Handles are freed deterministically with #close (or by the block forms,
# which close in +ensure+). An FFI::AutoPointer frees a handle the program
# forgot, when the garbage collector gets to it: a safety net, not the plan.
module Pseudostream
  # A failed library call: the ps_status number, the HTTP status it stands
  # for (ps_status_http) and the library's detail (ps_last_error).
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
      # The detail already names what failed ("option 'cut' = 'x': ...").
      super(detail.empty? ? Native.ps_strerror(status) : detail)
    end

    # The status as a symbol (:not_found, :invalid_arg, ...).
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

  # One library setting as ps_options_describe lists it: its name, the
  # other names it answers to, and what it takes.
  OptionKey = Struct.new(:name, :aliases, :takes)

  # Descriptive parameter names this binding has always accepted in
  # +params:+, mapped onto the library's (which are the query names).
  PARAM_NAMES = {
    "initial_bytes" => "ib", "file_start" => "fs", "byte_start" => "bstart",
    "byte_end" => "bend", "burst" => "ri", "rate" => "rs"
  }.freeze

  # Environment names of earlier releases that the library does not know.
  LEGACY_ENV = { "burst_secs" => "burst_seconds" }.freeze

  # ps_version: the library's version string.
  def self.library_version
    Native.ps_version
  end

  # Every key ps_options_set takes (OptionKey values), from the library.
  def self.option_keys
    @option_keys ||= describe_options.lines.filter_map do |line|
      names, takes = line.chomp.split(": ", 2)
      next if names.to_s.empty?

      name, *aliases = names.split(" | ").map(&:strip)
      OptionKey.new(name, aliases.freeze, takes.to_s).freeze
    end.freeze
  end

  # ps_options_describe: one line per key, "name | alias: what it takes".
  def self.describe_options
    needed = FFI::MemoryPointer.new(:size_t)
    status = Native.ps_options_describe(nil, 0, needed)
    Error.check(status) unless status == Native::PS_ERR_BUFFER_TOO_SMALL
    buf = FFI::MemoryPointer.new(:char, needed.read(:size_t))
    Error.check(Native.ps_options_describe(buf, buf.size, needed))
    buf.read_bytes(needed.read(:size_t)).force_encoding(Encoding::UTF_8)
  ensure
    buf&.free
    needed&.free
  end

  # The library settings in +env+: PSEUDOSTREAM_<KEY> for every key and
  # alias the library lists (PSEUDOSTREAM_START_UNIT, PSEUDOSTREAM_RATE,
  # PSEUDOSTREAM_UNIT, ...) and the older PSEUDOSTREAM_BURST_SECS. Empty
  # values count as unset. Returns { "start_unit" => "seconds", ... }.
  def self.env_settings(env = ENV)
    names = option_keys.flat_map { |k| [k.name, *k.aliases] } + LEGACY_ENV.keys
    names.each_with_object({}) do |name, out|
      value = env["PSEUDOSTREAM_#{name.upcase}"].to_s.strip
      out[LEGACY_ENV.fetch(name, name)] = value unless value.empty?
    end
  end

  # A process-wide setting (mp4_max_moov_size, index_cache), for every app
  # in the process: ps_options_set without options.
  def self.set_option(key, value)
    Options.values(key, value).each do |text|
      Error.check(Native.ps_options_set(nil, key.to_s, text))
    end
    nil
  end

  # The largest MP4 moov box the library reads, in bytes or a size ("64m");
  # files with a larger one are refused (415), an index already cached
  # included (the limit is checked on every open). Process-wide: set it once
  # at boot.
  def self.mp4_max_moov_size=(bytes)
    set_option("mp4_max_moov_size", bytes)
  end

  # How a host serves (ps_options): settings by the library's keys (see
  # Pseudostream.option_keys, or `pseudostream help`), in the library's
  # value syntax. Ruby values are turned into that text: true/false into
  # on/off, symbols and numbers into their names, a Hash for +params+ into
  # one "param=name" setting each. Configured once in the constructor and
  # read-only afterwards, so one instance is shared by every thread.
  #
  #   Pseudostream::Options.new(start_unit: :seconds, rate: "auto:1.25",
  #                             cors: "https://player.example")
  class Options < Handle
    def self.open(settings = {}, **keywords, &block)
      scoped(new(settings, **keywords), &block)
    end

    # The strings ps_options_set gets for +value+ under +key+ (none for nil).
    def self.values(key, value)
      param = key.to_s.match?(/\Aparams?\z/i)
      case value
      when nil then []
      when true then ["on"]
      when false then ["off"]
      when Hash
        raise ArgumentError, "#{key}: a Hash is for params only" unless param

        value.map { |which, name| "#{PARAM_NAMES.fetch(which.to_s, which.to_s)}=#{name}" }
      when Array then value.flat_map { |v| values(key, v) }
      else
        text = value.to_s
        # One environment variable holds many renames: "start=ss,end=es".
        param ? text.split(",").map(&:strip).reject(&:empty?).map { |pair| param_pair(pair) } : [text]
      end
    end

    def self.param_pair(pair)
      which, rest = pair.split(/(?=[=\s])/, 2)
      "#{PARAM_NAMES.fetch(which.to_s, which)}#{rest}"
    end

    # Applies +settings+ (a Hash or pairs), then the keywords, in order: a
    # later value of a key replaces an earlier one.
    def initialize(settings = {}, **keywords)
      super(Handle.out_pointer { |slot| Native.ps_options_new(slot) },
            Native.method(:ps_options_free))
      settings.each { |key, value| set(key, value) }
      keywords.each { |key, value| set(key, value) }
    rescue StandardError
      close
      raise
    end

    # ps_options_set for one key; raises Pseudostream::Error (:invalid_arg,
    # naming key and value) for what the library does not accept.
    def set(key, value)
      Options.values(key, value).each do |text|
        Error.check(Native.ps_options_set(to_ptr, key.to_s, text))
      end
      self
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

  # One HTTP request and the library's whole answer to it (ps_exchange):
  # hand it the method, the raw query and every request header, open the
  # file (or say why it could not be), let it #respond, then send #status,
  # every one of #headers and the body #fill gives. One thread at a time.
  class Exchange < Handle
    DATA = Native::PS_FILL_DATA
    WAIT = Native::PS_FILL_WAIT
    DONE = Native::PS_FILL_DONE

    # +query+ is the query string without '?', undecoded.
    def self.open(method, query, &block)
      method = method.to_s
      query = query.to_s
      pointer = Handle.out_pointer do |slot|
        Native.ps_exchange_new(method, method.bytesize, query, query.bytesize, slot)
      end
      scoped(new(pointer), &block)
    end

    def initialize(pointer)
      super(pointer, Native.method(:ps_exchange_free))
      @written = FFI::MemoryPointer.new(:size_t)
      @wait_us = FFI::MemoryPointer.new(:uint64)
      @state = FFI::MemoryPointer.new(:uint32)
    end

    # One request header (names in any case; unknown ones are ignored).
    def set_header(name, value)
      name = name.to_s
      value = value.to_s
      Error.check(Native.ps_exchange_set_header(to_ptr, name, name.bytesize, value, value.bytesize))
      self
    end

    # Whether the answer depends on the file (GET, HEAD): then open it
    # with #open_path or #open_failed before #respond.
    def wants_file?
      with_out(:uint32) { |out| Native.ps_exchange_wants_file(to_ptr, out) } == 1
    end

    # The library opens and indexes the file; a missing, forbidden or
    # unreadable one becomes the answer.
    def open_path(path)
      Error.check(Native.ps_exchange_open_path(to_ptr, path.to_s))
      self
    end

    # The host's own lookup failed with +errno+ (Errno::ENOENT::Errno, ...).
    def open_failed(errno, name = nil)
      Error.check(Native.ps_exchange_open_failed(to_ptr, Integer(errno), name&.to_s))
      self
    end

    # Decides the answer under +options+ (nil: the library's defaults).
    def respond(options = nil)
      Error.check(Native.ps_exchange_respond(to_ptr, options))
      self
    end

    # ps_exchange_info as a Hash of Integers (status, body_length, ...).
    def info
      out = Native::ExchangeInfo.new
      Error.check(Native.ps_exchange_get_info(to_ptr, out))
      out.members.to_h { |k| [k, out[k]] }
    end

    # Every response header, in order, as [name, value] Strings.
    def headers
      slots = Array.new(4) { FFI::MemoryPointer.new(:pointer) }
      name, name_len, value, value_len = slots
      Array.new(info[:header_count]) do |i|
        Error.check(Native.ps_exchange_header(to_ptr, i, name, name_len, value, value_len))
        [name.read_pointer.read_bytes(name_len.read(:size_t)),
         value.read_pointer.read_bytes(value_len.read(:size_t))]
      end
    ensure
      slots&.each(&:free)
    end

    # Why the answer is what it is, for the log only (it may name paths).
    def detail
      with_out(:pointer) { |out| Native.ps_exchange_detail(to_ptr, out) }.read_string.dup
    end

    # Fills +buffer+ (an FFI::Pointer of +capacity+ bytes) with body bytes
    # as far as pacing allows at +now_us+ (a monotonic clock). Returns
    # [state, written, wait_us] with state DATA, WAIT or DONE. Never sleeps.
    def fill(buffer, capacity, now_us)
      Error.check(Native.ps_exchange_fill(to_ptr, buffer, capacity, now_us, @written, @wait_us, @state))
      [@state.read(:uint32), @written.read(:size_t), @wait_us.read(:uint64)]
    end

    def close
      super
      [@written, @wait_us, @state].each { |p| p&.free }
      @written = @wait_us = @state = nil
    end

    private

    def with_out(type)
      out = FFI::MemoryPointer.new(type)
      Error.check(yield out)
      type == :pointer ? out.read_pointer : out.read(type)
    ensure
      out&.free
    end
  end
end

require_relative "pseudostream/rack_app"
