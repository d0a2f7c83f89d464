# frozen_string_literal: true

module Pseudostream
  # Raised from a response body's #each when the library fails after the
  # headers went out (e.g. the file shrank: PS_ERR_SOURCE_CHANGED). The
  # response cannot be completed, so the server must drop the connection;
  # it is an IOError because servers (puma among them) treat those raised
  # while writing a body as a lost connection and close it quietly.
  class StreamError < IOError
    attr_reader :error

    def initialize(error)
      @error = error
      super("pseudostream: response aborted: #{error.message}")
    end
  end

  # A Rack application that serves the FLV and MP4 files under +root+ with
  # pseudostreaming. The app maps the URL to a file; the library decides
  # the whole answer (status, every header, the body and its pacing) from
  # the method, the query, the request headers and the file, and the app
  # hands that to the server unchanged.
  #
  #   Pseudostream::RackApp.new(root: "/srv/video", start_unit: :seconds)
  #
  # Mounted with Rack's +map+, the part of the path after the mount point
  # (PATH_INFO) names the file below +root+. Library settings come from
  # +environment+ (PSEUDOSTREAM_<KEY>, see Pseudostream.env_settings), then
  # +options+ (a Hash by key), then the other keywords, a later one
  # replacing an earlier one; see Pseudostream::Options for the values.
  class RackApp
    BUFFER_SIZE = 64 * 1024

    attr_reader :root, :options

    def initialize(root:, environment: ENV, options: {}, buffer_size: BUFFER_SIZE, **settings)
      @root = File.realpath(root.to_s)
      raise ArgumentError, "media root #{root} is not a directory" unless File.directory?(@root)

      @root_slash = @root.end_with?("/") ? @root : "#{@root}/"
      @buffer_size = Integer(buffer_size)
      raise ArgumentError, "buffer_size must be positive" unless @buffer_size.positive?

      # One ps_options for the app, shared read-only by every request thread.
      @options = Options.new(Pseudostream.env_settings(environment || {}).to_a + options.to_a, **settings)
    end

    # Frees the shared options (at shutdown; the app is unusable afterwards).
    def close
      @options.close
    end

    def call(env)
      segments, refusal = split_path(env["PATH_INFO"].to_s)
      return refusal if refusal

      exchange = Exchange.open(env["REQUEST_METHOD"], env["QUERY_STRING"])
      response = decide(exchange, segments, env)
      # A body that streams owns the exchange; otherwise it ends here.
      exchange = nil if response[2].is_a?(StreamBody)
      response
    rescue Pseudostream::Error => e
      log(env, "pseudostream: #{request_line(env)}: #{e.message}")
      text(500, "internal error")
    ensure
      exchange&.close
    end

    private

    # The library's answer to the request, or the app's own refusal of a
    # path that leaves the root.
    def decide(exchange, segments, env)
      request_headers(env) { |name, value| exchange.set_header(name, value) }
      if exchange.wants_file?
        refusal = open_file(exchange, segments)
        return refusal if refusal
      end
      exchange.respond(@options)
      answer(exchange, env)
    end

    # The answer as the library gives it. A body that sends nothing (HEAD,
    # 204, 304) frees the exchange at once; any other takes it over.
    def answer(exchange, env)
      info = exchange.info
      status = info[:status]
      detail = status >= 400 ? exchange.detail : ""
      log(env, "pseudostream: #{status} #{request_line(env)}: #{detail}") unless detail.empty?
      headers = {}
      exchange.headers.each do |name, value|
        # Rack 2 writes a value with "\n" as one header line per part.
        headers[name] = headers.key?(name) ? "#{headers[name]}\n#{value}" : value
      end
      return [status, headers, []] if info[:body_length].zero?

      [status, headers, StreamBody.new(exchange, @buffer_size, env["rack.errors"])]
    end

    # Every request header in +env+ by name: HTTP_* and the two Rack keeps
    # apart (CONTENT_TYPE, CONTENT_LENGTH); the library picks what it reads.
    def request_headers(env)
      env.each do |key, value|
        next unless value.is_a?(String)

        name = if key.start_with?("HTTP_")
                 key.delete_prefix("HTTP_")
               elsif %w[CONTENT_TYPE CONTENT_LENGTH].include?(key)
                 key
               end
        # HTTP_VERSION is the request line's protocol some servers add.
        next if name.nil? || key == "HTTP_VERSION"

        yield name.tr("_", "-"), value
      end
    end

    # PATH_INFO (percent-encoded) to [segments below the root], or to
    # [nil, the app's own answer] for a malformed path or one that climbs out.
    def split_path(path_info)
      return [nil, text(400, "bad request: malformed percent-encoding")] if path_info.match?(/%(?!\h\h)/)

      decoded = path_info.b.gsub(/%(\h\h)/) { Regexp.last_match(1).hex.chr }
      return [nil, text(400, "bad request: NUL in the path")] if decoded.include?("\0")

      segments = decoded.split("/").reject { |s| s.empty? || s == "." }
      return [nil, text(404, "not found")] if segments.include?("..")

      [segments.map { |s| s.force_encoding(Encoding::UTF_8) }]
    end

    # Opens the file the segments name for the library, or tells it why it
    # cannot be opened (then the library answers 404 or 403 with its own
    # headers). Returns the app's own answer only for a path that leads out
    # of the root through a symlink.
    def open_file(exchange, segments)
      path = File.join(@root, *segments)
      # The library takes UTF-8 paths; no file here has another name.
      raise Errno::ENOENT unless path.valid_encoding?

      real = File.realpath(path)
      inside = real == @root || real.start_with?(@root_slash)
      return text(403, "forbidden: outside the media root") unless inside

      # Only regular files: opening a FIFO would block the thread.
      File.file?(real) ? exchange.open_path(real) : exchange.open_failed(Errno::ENOENT::Errno)
      nil
    rescue Errno::ENAMETOOLONG
      # A name longer than any file can have is a missing file, not an I/O error.
      exchange.open_failed(Errno::ENOENT::Errno)
      nil
    rescue SystemCallError => e
      exchange.open_failed(e.errno)
      nil
    end

    def request_line(env)
      "#{env['REQUEST_METHOD']} #{env['PATH_INFO']}"
    end

    def log(env, line)
      env["rack.errors"]&.puts(line)
    end

    # The app's own short answer, for paths it refuses before the library.
    def text(status, message)
      body = "#{message}\n"
      headers = { "Content-Type" => "text/plain; charset=utf-8", "Content-Length" => body.bytesize.to_s }
      [status, headers, [body]]
    end
  end

  # The body of an answer with bytes to send: #each yields the bytes the
  # library puts into one reused buffer (ps_exchange_fill), sleeping
  # whenever pacing says to wait. #close (called by the server, also after
  # a failed write) frees the exchange and the buffer; #each frees them too
  # once it ends, however.
  class StreamBody
    def initialize(exchange, buffer_size, errors = nil)
      @exchange = exchange
      @capacity = buffer_size
      @buffer = FFI::MemoryPointer.new(:uint8, buffer_size)
      @errors = errors
    end

    def each
      loop do
        now_us = Process.clock_gettime(Process::CLOCK_MONOTONIC, :microsecond)
        state, written, wait_us = @exchange.fill(@buffer, @capacity, now_us)
        case state
        when Exchange::DATA then yield @buffer.get_bytes(0, written)
        when Exchange::WAIT then sleep(wait_us / 1e6)
        else break
        end
      end
    rescue Pseudostream::Error => e
      @errors&.puts("pseudostream: stream stopped: #{e.message}")
      raise StreamError, e
    ensure
      close
    end

    def close
      exchange = @exchange
      buffer = @buffer
      @exchange = @buffer = nil
      exchange&.close
      buffer&.free
      nil
    end
  end
end
