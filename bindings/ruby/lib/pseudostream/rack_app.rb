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

  # A Rack application that serves the FLV files under +root+ with
  # pseudostreaming: GET/HEAD /path/movie.flv?start=... as the library
  # plans it, with Range, validators and pacing.
  #
  #   Pseudostream::RackApp.new(root: "/srv/video", start_unit: :seconds)
  #
  # Mounted with Rack's +map+, the part of the path after the mount point
  # (PATH_INFO) names the file below +root+. Keywords other than root,
  # buffer_size and logger configure the library (see Pseudostream::Options).
  class RackApp
    BUFFER_SIZE = 64 * 1024
    METHODS = %w[GET HEAD].freeze

    attr_reader :root, :options

    def initialize(root:, start_unit: :bytes, prefix: :init, burst: nil, burst_seconds: nil,
                   rate: nil, client_pacing: true, metadata: :missing, cut: :exact, params: {},
                   buffer_size: BUFFER_SIZE)
      @root = File.realpath(root.to_s)
      raise ArgumentError, "media root #{root} is not a directory" unless File.directory?(@root)

      @root_slash = @root.end_with?("/") ? @root : "#{@root}/"
      @buffer_size = Integer(buffer_size)
      raise ArgumentError, "buffer_size must be positive" unless @buffer_size.positive?

      # One ps_options for the app, shared read-only by every request thread.
      @options = Options.new(prefix: prefix, start_unit: start_unit, params: params,
                             burst: burst, burst_seconds: burst_seconds, rate: rate,
                             client_pacing: client_pacing, metadata: metadata, cut: cut)
    end

    # Frees the shared options (at shutdown; the app is unusable afterwards).
    def close
      @options.close
    end

    def call(env)
      method = env["REQUEST_METHOD"]
      unless METHODS.include?(method)
        return text(405, "method not allowed", "Allow" => "GET, HEAD")
      end

      path = resolve(env["PATH_INFO"].to_s)
      return path if path.is_a?(Array)

      validators = %w[HTTP_RANGE HTTP_IF_MATCH HTTP_IF_NONE_MATCH HTTP_IF_RANGE].map { |k| env[k] }
      return text(400, "bad request: NUL in a header") if validators.any? { |v| v&.include?("\0") }

      serve(path, env["QUERY_STRING"].to_s, validators, method == "HEAD", env["rack.errors"])
    end

    private

    # Steps 2-7 of a request. Media, request and plan are freed before this
    # returns; the body owns only the stream, which keeps its own reference
    # to the bytes.
    def serve(path, query, validators, head, errors)
      media = request = plan = nil
      media = Media.open(path)
      request = Request.parse(@options, query)
      begin
        plan = Plan.open(media, @options, request)
      rescue Pseudostream::Error => e
        raise unless e.status == Native::PS_ERR_RANGE_NOT_SATISFIABLE

        return text(416, e.detail, "Content-Range" => "bytes */#{media.info[:size]}")
      end
      range, if_match, if_none_match, if_range = validators
      reply = plan.respond(range: range, if_match: if_match, if_none_match: if_none_match,
                           if_range: if_range)
      respond(media, plan, reply, head, errors)
    rescue Pseudostream::Error => e
      text(e.http_status, e.detail)
    ensure
      plan&.close
      request&.close
      media&.close
    end

    def respond(media, plan, reply, head, errors)
      headers = { "ETag" => plan.etag, "Accept-Ranges" => "bytes" }
      case reply.status
      when 200, 206
        info = plan.info
        headers["Content-Type"] = plan.content_type
        headers["Content-Length"] = reply.length.to_s
        headers["Content-Range"] = plan.content_range(reply) if reply.status == 206
        headers["X-Pseudostream-Start-Ms"] = info[:start_ms].to_s
        headers["X-Pseudostream-End-Ms"] = info[:end_ms].to_s
        return [reply.status, headers, []] if head

        [reply.status, headers, stream_body(media, plan, reply, errors)]
      when 304
        [304, headers, []]
      when 416
        text(416, "range not satisfiable", headers.merge("Content-Range" => plan.content_range(reply)))
      else
        text(reply.status, reply.status == 412 ? "precondition failed" : "unexpected status", headers)
      end
    end

    def stream_body(media, plan, reply, errors)
      # Paced as the library's policy says (the plan's pacing, Range included).
      stream = Stream.open(media, plan, reply.first, reply.length)
      StreamBody.new(stream, @buffer_size, errors)
    rescue StandardError
      stream&.close
      raise
    end

    # Step 1: PATH_INFO (percent-encoded) to a regular file inside the root,
    # or a response for what cannot be served.
    def resolve(path_info)
      return text(400, "bad request: malformed percent-encoding") if path_info.match?(/%(?!\h\h)/)

      decoded = path_info.b.gsub(/%(\h\h)/) { Regexp.last_match(1).hex.chr }
      decoded.force_encoding(Encoding::UTF_8)
      return text(404, "not found") unless decoded.valid_encoding?
      return text(400, "bad request: NUL in the path") if decoded.include?("\0")

      segments = decoded.split("/").reject(&:empty?)
      return text(404, "not found") if segments.empty? || segments.any? { |s| %w[. ..].include?(s) }

      real = File.realpath(File.join(@root, *segments))
      return text(403, "forbidden: outside the media root") unless real.start_with?(@root_slash)
      return text(404, "not found") unless File.file?(real)

      real
    rescue Errno::EACCES
      text(403, "forbidden")
    rescue SystemCallError
      text(404, "not found")
    end

    # A short text response. Library details name files by their absolute
    # path; clients see them relative to the root.
    def text(status, message, headers = {})
      body = "#{message.to_s.gsub(@root_slash, '')}\n"
      [status, headers.merge("Content-Type" => "text/plain; charset=utf-8",
                             "Content-Length" => body.bytesize.to_s), [body]]
    end
  end

  # The body of a 200/206 response: #each yields the bytes the library puts
  # into one reused 64 KiB buffer, sleeping whenever pacing says to wait.
  # #close (called by the server, also after a failed write) frees the
  # stream and the buffer; #each frees them too once it ends, however.
  class StreamBody
    def initialize(stream, buffer_size, errors = nil)
      @stream = stream
      @capacity = buffer_size
      @buffer = FFI::MemoryPointer.new(:uint8, buffer_size)
      @errors = errors
    end

    def each
      loop do
        now_us = Process.clock_gettime(Process::CLOCK_MONOTONIC, :microsecond)
        state, written, wait_us = @stream.fill(@buffer, @capacity, now_us)
        case state
        when Stream::DATA then yield @buffer.get_bytes(0, written)
        when Stream::WAIT then sleep(wait_us / 1e6)
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
      stream = @stream
      buffer = @buffer
      @stream = @buffer = nil
      stream&.close
      buffer&.free
      nil
    end
  end
end
