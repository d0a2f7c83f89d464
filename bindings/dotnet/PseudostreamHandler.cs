// An ASP.NET IHttpHandler serving FLV and MP4 pseudostreaming with
// libpseudostream: `movie.flv?start=…` answered with a stream that starts at a
// keyframe, `movie.mp4?start=12.5&end=30` with a cut MP4, plus
// Range, ETag validators, HEAD and pacing. Every decision (where to start,
// what prefix to send, which status a Range gets, how fast to send) is the
// library's; this file maps the URL to a file, copies headers and bytes, and
// sleeps the waits the library returns.
//
// Registered for *.flv and the MP4 extensions in web.config; configured by appSettings (see
// bindings/dotnet/README.md):
//   pseudostream:mediaRoot      directory served (required; "~/x" = under the app)
//   pseudostream:prefix         none | header | init (default) | full
//   pseudostream:startUnit      bytes (default) | seconds
//   pseudostream:param:NAME     rename query parameter NAME (start, end, ib, fs,
//                               bstart, bend, ri, rs); "" turns it off
//   pseudostream:burstBytes     pacing burst in bytes
//   pseudostream:burstSeconds   pacing burst in seconds of media (alias: duration)
//   pseudostream:rate           bytes per second, "auto", "auto:1.25" or "off"
//   pseudostream:clientPacing   true (default) | false: may ri/rs set pacing
//   pseudostream:metadata       off | missing (default) | always: FLVs as virtual files
//   pseudostream:cut            exact (default) | keyframe: where MP4 cuts start
//   pseudostream:mp4MaxMoovSize largest MP4 moov read, bytes (default 64 MiB);
//                               process-wide: shared by every application in the process

using System;
using System.Collections.Specialized;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;
using System.Web;
using System.Web.Configuration;

namespace Pseudostream.Web
{
    public sealed class PseudostreamHandler : IHttpHandler
    {
        private const int BufferSize = 64 * 1024;
        private const int MaxSleepMs = 500;

        private static readonly object ConfigLock = new object();
        private static HostConfig config;

        [ThreadStatic]
        private static byte[] buffer;

        public bool IsReusable
        {
            get { return true; }
        }

        public void ProcessRequest(HttpContext context)
        {
            HttpResponse response = context.Response;
            response.TrySkipIisCustomErrors = true;
            try
            {
                Serve(context);
            }
            catch (Exception e)
            {
                // Never a stack trace to the client: a short text, the detail to the log.
                Log("error serving " + context.Request.RawUrl + ": " + e);
                // Output is unbuffered only once the body is under way: too late for a status.
                if (response.BufferOutput)
                {
                    response.ClearHeaders();
                    response.ClearContent();
                    Fail(response, 500, "internal error");
                }
            }
        }

        private static void Serve(HttpContext context)
        {
            HttpRequest request = context.Request;
            HttpResponse response = context.Response;
            string method = request.HttpMethod;
            bool head = method == "HEAD";
            if (!head && method != "GET")
            {
                response.AppendHeader("Allow", "GET, HEAD");
                Fail(response, 405, "method not allowed");
                return;
            }

            HostConfig cfg;
            try
            {
                cfg = Config();
            }
            catch (Exception e)
            {
                Log("configuration: " + e.Message);
                Fail(response, 500, "pseudostream is not configured");
                return;
            }

            int refusal;
            string path = MapPath(cfg, request, out refusal);
            if (path == null)
            {
                Fail(response, refusal, refusal == 403 ? "forbidden" : "not found");
                return;
            }

            string query = RawQuery(request);
            Media media = null;
            Request req = null;
            Plan plan = null;
            ResponseStream stream = null;
            try
            {
                try
                {
                    media = Media.Open(path);
                    req = Request.Parse(cfg.Options, query);
                    plan = Plan.New(media, cfg.Options, req);
                }
                catch (PseudostreamException e)
                {
                    if (e.Status == PsStatus.RangeNotSatisfiable && media != null)
                        response.AppendHeader("Content-Range",
                            "bytes */" + media.Info.Size.ToString(CultureInfo.InvariantCulture));
                    // The library's reason, without the server's directory layout.
                    Fail(response, e.HttpStatus, e.Message.Replace(cfg.MediaRoot + "/", ""));
                    return;
                }

                PsResponse answer = plan.Respond(request.Headers["Range"], request.Headers["If-Match"],
                    request.Headers["If-None-Match"], request.Headers["If-Range"]);
                PsPlanInfo info = plan.Info;
                response.StatusCode = (int)answer.Status;
                response.ContentType = plan.ContentType;
                response.AppendHeader("ETag", plan.ETag);
                response.AppendHeader("Accept-Ranges", "bytes");
                response.AppendHeader("X-Pseudostream-Start-Ms", info.StartMs.ToString(CultureInfo.InvariantCulture));
                response.AppendHeader("X-Pseudostream-End-Ms", info.EndMs.ToString(CultureInfo.InvariantCulture));
                if (answer.Status == 304 || answer.Status == 412)
                {
                    response.SuppressContent = true;
                    return;
                }
                if (answer.Status == 416)
                {
                    response.AppendHeader("Content-Range", plan.ContentRange(answer));
                    Fail(response, 416, "range not satisfiable");
                    return;
                }
                if (answer.Status == 206)
                    response.AppendHeader("Content-Range", plan.ContentRange(answer));
                response.AppendHeader("Content-Length", answer.Length.ToString(CultureInfo.InvariantCulture));
                if (head || answer.Length == 0)
                {
                    response.SuppressContent = head;
                    return;
                }

                // Paced as the library's policy says (the plan's pacing, Range included).
                stream = ResponseStream.New(media, plan, answer.First, answer.Length);
                // A paced response may outlast ASP.NET's execution timeout.
                context.Server.ScriptTimeout = int.MaxValue / 1000;
                response.BufferOutput = false;
                Send(context, stream);
            }
            finally
            {
                if (stream != null) stream.Dispose();
                if (plan != null) plan.Dispose();
                if (req != null) req.Dispose();
                if (media != null) media.Dispose();
            }
        }

        /// <summary>Copies the stream to the client, sleeping the library's waits.</summary>
        private static void Send(HttpContext context, ResponseStream stream)
        {
            HttpResponse response = context.Response;
            byte[] buf = buffer ?? (buffer = new byte[BufferSize]);
            Stream output = response.OutputStream;
            while (true)
            {
                if (!response.IsClientConnected)
                    return;
                int written;
                ulong waitUs;
                uint state;
                try
                {
                    state = stream.Fill(buf, NowUs(), out written, out waitUs);
                }
                catch (PseudostreamException e)
                {
                    // The headers are gone: end the response short (the client sees
                    // fewer bytes than Content-Length) and log why.
                    Log("stream " + context.Request.RawUrl + ": " + e.Message);
                    return;
                }
                if (state == PsFillState.Done)
                    return;
                if (state == PsFillState.Wait)
                {
                    // Sleep in slices so a client that leaves is noticed.
                    ulong ms = (waitUs + 999) / 1000;
                    Thread.Sleep((int)Math.Min(ms, (ulong)MaxSleepMs));
                    continue;
                }
                try
                {
                    output.Write(buf, 0, written);
                    response.Flush();
                }
                catch (HttpException)
                {
                    return; // client gone
                }
                catch (IOException)
                {
                    return; // client gone
                }
            }
        }

        /// <summary>
        /// The file under the media root for this URL, or null with 404/403 in
        /// <paramref name="refusal"/>. ASP.NET has percent-decoded the path once.
        /// </summary>
        private static string MapPath(HostConfig cfg, HttpRequest request, out int refusal)
        {
            refusal = 404;
            if (!string.IsNullOrEmpty(request.PathInfo))
                return null;
            string rel = request.AppRelativeCurrentExecutionFilePath ?? "";
            if (rel.StartsWith("~/", StringComparison.Ordinal))
                rel = rel.Substring(2);
            else
                return null;
            if (rel.Length == 0 || rel.IndexOf('\0') >= 0)
                return null;
            refusal = 403;
            if (rel.IndexOf('\\') >= 0 || rel.StartsWith("/", StringComparison.Ordinal))
                return null;
            var sb = new StringBuilder(cfg.MediaRoot);
            foreach (string segment in rel.Split('/'))
            {
                if (segment.Length == 0 || segment == ".")
                    continue;
                if (segment == "..")
                    return null;
                sb.Append('/').Append(segment);
            }
            string lexical = sb.ToString();
            string real = Posix.RealPath(lexical);
            if (real == null)
            {
                // Missing (or unreadable): the library gives the 404/403 and its reason.
                refusal = 0;
                return lexical;
            }
            if (!real.StartsWith(cfg.MediaRoot + "/", StringComparison.Ordinal))
                return null; // a symlink leading out of the root
            refusal = 0;
            return real;
        }

        /// <summary>The query string as the client sent it, without '?'.</summary>
        private static string RawQuery(HttpRequest request)
        {
            string raw = request.RawUrl ?? "";
            int q = raw.IndexOf('?');
            return q < 0 ? "" : raw.Substring(q + 1);
        }

        private static void Fail(HttpResponse response, int status, string message)
        {
            response.StatusCode = status;
            response.ContentType = "text/plain; charset=utf-8";
            response.Write(message);
            response.Write("\n");
        }

        /// <summary>A monotonic clock in microseconds.</summary>
        private static ulong NowUs()
        {
            long ticks = Stopwatch.GetTimestamp();
            long freq = Stopwatch.Frequency;
            return (ulong)(ticks / freq) * 1000000UL + (ulong)(ticks % freq) * 1000000UL / (ulong)freq;
        }

        private static void Log(string message)
        {
            Console.Error.WriteLine("pseudostream: " + message);
        }

        private static HostConfig Config()
        {
            lock (ConfigLock)
            {
                if (config == null)
                    config = HostConfig.Load(WebConfigurationManager.AppSettings);
                return config;
            }
        }

        /// <summary>Settings read once per application; the options are shared read-only.</summary>
        private sealed class HostConfig
        {
            public string MediaRoot;
            public Options Options;

            public static HostConfig Load(NameValueCollection settings)
            {
                string root = settings["pseudostream:mediaRoot"];
                if (string.IsNullOrEmpty(root))
                    throw new InvalidOperationException("appSettings pseudostream:mediaRoot is not set");
                if (root.StartsWith("~/", StringComparison.Ordinal))
                    root = Path.Combine(HttpRuntime.AppDomainAppPath, root.Substring(2));
                string real = Posix.RealPath(root);
                if (real == null || !Directory.Exists(real))
                    throw new InvalidOperationException("media root " + root + " is not a directory");

                var options = new Options();
                try
                {
                    Configure(options, settings);
                }
                catch
                {
                    options.Dispose();
                    throw;
                }
                Log("serving " + real + " with libpseudostream " + Library.Version);
                return new HostConfig { MediaRoot = real.TrimEnd('/'), Options = options };
            }

            private static void Configure(Options options, NameValueCollection s)
            {
                string prefix = s["pseudostream:prefix"];
                if (!string.IsNullOrEmpty(prefix))
                    options.SetPrefixMode(PrefixMode(prefix));

                string unit = s["pseudostream:startUnit"];
                if (!string.IsNullOrEmpty(unit))
                {
                    switch (unit.Trim().ToLowerInvariant())
                    {
                        case "bytes": options.SetStartUnit(PsUnit.Bytes); break;
                        case "seconds": options.SetStartUnit(PsUnit.Seconds); break;
                        default: throw Bad("pseudostream:startUnit", unit);
                    }
                }

                string[] names = { "start", "end", "ib", "fs", "bstart", "bend", "ri", "rs" };
                uint[] ids =
                {
                    PsParam.Start, PsParam.End, PsParam.InitialBytes, PsParam.FileStart,
                    PsParam.ByteStart, PsParam.ByteEnd, PsParam.Burst, PsParam.Rate,
                };
                for (int i = 0; i < names.Length; i++)
                {
                    string renamed = s["pseudostream:param:" + names[i]];
                    if (renamed != null)
                        options.SetParamName(ids[i], renamed.Trim());
                }

                string burstBytes = s["pseudostream:burstBytes"];
                if (!string.IsNullOrEmpty(burstBytes))
                    options.SetBurstBytes(ParseU64("pseudostream:burstBytes", burstBytes));
                // "duration" is the older handler's name for the burst in seconds.
                string burstSecs = s["pseudostream:burstSeconds"] ?? s["pseudostream:duration"] ?? s["duration"];
                if (!string.IsNullOrEmpty(burstSecs))
                    options.SetBurstMs(ParseMs("pseudostream:burstSeconds", burstSecs));

                string rate = s["pseudostream:rate"];
                if (!string.IsNullOrEmpty(rate))
                {
                    string r = rate.Trim().ToLowerInvariant();
                    if (r == "off" || r == "0")
                        options.SetRate(0);
                    else if (r == "auto")
                        options.SetRateAuto(1250);
                    else if (r.StartsWith("auto:", StringComparison.Ordinal))
                        options.SetRateAuto(checked((uint)ParseMs("pseudostream:rate", r.Substring(5))));
                    else
                        options.SetRate(ParseU64("pseudostream:rate", r));
                }

                string metadata = s["pseudostream:metadata"];
                if (!string.IsNullOrEmpty(metadata))
                {
                    switch (metadata.Trim().ToLowerInvariant())
                    {
                        case "off": options.SetMetadata(0); break;
                        case "missing": options.SetMetadata(1); break;
                        case "always": options.SetMetadata(2); break;
                        default: throw Bad("pseudostream:metadata", metadata);
                    }
                }

                string cut = s["pseudostream:cut"];
                if (!string.IsNullOrEmpty(cut))
                {
                    switch (cut.Trim().ToLowerInvariant())
                    {
                        case "exact": options.SetCutMode(PsCutMode.Exact); break;
                        case "keyframe": options.SetCutMode(PsCutMode.Keyframe); break;
                        default: throw Bad("pseudostream:cut", cut);
                    }
                }

                string client = s["pseudostream:clientPacing"];
                if (!string.IsNullOrEmpty(client))
                {
                    switch (client.Trim().ToLowerInvariant())
                    {
                        case "true": case "on": case "1": options.SetClientPacing(true); break;
                        case "false": case "off": case "0": options.SetClientPacing(false); break;
                        default: throw Bad("pseudostream:clientPacing", client);
                    }
                }

                // Not an option but the library's process-wide limit: the last
                // application to load its settings sets it for all of them.
                string moov = s["pseudostream:mp4MaxMoovSize"];
                if (!string.IsNullOrEmpty(moov))
                    Library.SetMp4MaxMoovSize(ParseU64("pseudostream:mp4MaxMoovSize", moov));
            }

            private static uint PrefixMode(string v)
            {
                switch (v.Trim().ToLowerInvariant())
                {
                    case "none": return PsPrefixMode.None;
                    case "header": return PsPrefixMode.Header;
                    case "init": return PsPrefixMode.Init;
                    case "full": return PsPrefixMode.Full;
                    default: throw Bad("pseudostream:prefix", v);
                }
            }

            private static ulong ParseU64(string key, string v)
            {
                ulong n;
                if (!ulong.TryParse(v.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out n))
                    throw Bad(key, v);
                return n;
            }

            /// <summary>A decimal such as "3" or "2.5", times 1000.</summary>
            private static ulong ParseMs(string key, string v)
            {
                decimal d;
                if (!decimal.TryParse(v.Trim(), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out d)
                    || d < 0 || d > 1000000000m)
                    throw Bad(key, v);
                return (ulong)decimal.Round(d * 1000m);
            }

            private static Exception Bad(string key, string value)
            {
                return new InvalidOperationException("appSettings " + key + ": bad value \"" + value + "\"");
            }
        }
    }

    /// <summary>realpath(3): how the handler keeps symlinks from leading out of the media root.</summary>
    internal static class Posix
    {
        private const int PathMax = 4096;

        [DllImport("libc.so.6", EntryPoint = "realpath", CallingConvention = CallingConvention.Cdecl)]
        private static extern IntPtr realpath(byte[] path, [Out] byte[] resolved);

        /// <summary>The canonical absolute path, or null when it cannot be resolved (missing, no access).</summary>
        public static string RealPath(string path)
        {
            var resolved = new byte[PathMax];
            if (realpath(Utf8.ToC(path), resolved) == IntPtr.Zero)
                return null;
            int n = Array.IndexOf(resolved, (byte)0);
            return Encoding.UTF8.GetString(resolved, 0, n < 0 ? resolved.Length : n);
        }
    }

    /// <summary>
    /// The handler's name from when it served FLV alone: a web.config that
    /// names it keeps working.
    /// </summary>
    [Obsolete("Register Pseudostream.Web.PseudostreamHandler: it serves FLV and MP4 alike.")]
    public sealed class FlvStreamingHandler : IHttpHandler
    {
        private readonly PseudostreamHandler handler = new PseudostreamHandler();

        public bool IsReusable
        {
            get { return true; }
        }

        public void ProcessRequest(HttpContext context)
        {
            handler.ProcessRequest(context);
        }
    }
}
