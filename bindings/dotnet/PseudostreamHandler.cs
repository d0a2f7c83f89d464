// An ASP.NET IHttpHandler serving FLV and MP4 pseudostreaming with
// libpseudostream (`movie.flv?start=…`, `movie.mp4?start=12.5&end=30`).
// The library decides the whole answer: method, preconditions, Range, CORS,
// status, every header, the body and its pacing. This file maps the URL to a
// file under the media root, hands the request to the library, writes the
// status and exactly the library's headers, copies the body and sleeps the
// waits the library returns.
//
// Registered for *.flv and the MP4 extensions in web.config; configured by
// appSettings: pseudostream:mediaRoot (the directory served, the handler's
// own) and pseudostream:KEY for every library key (bindings/dotnet/README.md).

using System;
using System.Collections.Generic;
using System.Collections.Specialized;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Reflection;
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

        // The one body buffer of each request thread, reused.
        [ThreadStatic]
        private static byte[] buffer;

        public bool IsReusable
        {
            get { return true; }
        }

        public void ProcessRequest(HttpContext context)
        {
            var reply = new Reply(context.Response);
            try
            {
                Serve(context, reply);
            }
            catch (Exception e)
            {
                // Never a stack trace to the client: a short text, the detail to the log.
                Log("error serving " + context.Request.RawUrl + ": " + e);
                if (!reply.BodyStarted)
                    reply.Text(500, "internal error");
            }
        }

        private static void Serve(HttpContext context, Reply reply)
        {
            HttpRequest request = context.Request;
            HostConfig cfg;
            try
            {
                cfg = Config();
            }
            catch (Exception e)
            {
                Log("configuration: " + e.Message);
                reply.Text(500, "pseudostream is not configured");
                return;
            }

            int errno, refusal;
            string path = MapPath(cfg, request, out errno, out refusal);
            if (path == null)
            {
                reply.Text(refusal, refusal == 403 ? "forbidden" : "not found");
                return;
            }

            using (Exchange x = Exchange.New(request.HttpMethod, RawQuery(request)))
            {
                NameValueCollection headers = request.Headers;
                for (int i = 0; i < headers.Count; i++)
                {
                    string name = headers.GetKey(i);
                    string[] values = headers.GetValues(i);
                    if (name == null || values == null)
                        continue;
                    foreach (string value in values)
                        x.SetHeader(name, value);
                }
                if (x.WantsFile)
                {
                    // A missing or forbidden file inside the root is the library's answer too.
                    if (errno != 0)
                        x.OpenFailed(errno, path);
                    else
                        x.OpenPath(path);
                }
                x.Respond(cfg.Options);

                PsExchangeInfo info = x.Info;
                if (info.Status >= 400)
                    Log(info.Status + " " + request.HttpMethod + " " + request.RawUrl + ": " + x.Detail);
                reply.Head((int)info.Status, x.Headers());
                if (info.BodyLength > 0)
                {
                    // A paced body may outlast ASP.NET's execution timeout.
                    context.Server.ScriptTimeout = int.MaxValue / 1000;
                    Send(context, reply, x);
                }
            }
        }

        /// <summary>Copies the body to the client, sleeping the library's waits.</summary>
        private static void Send(HttpContext context, Reply reply, Exchange x)
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
                    state = x.Fill(buf, NowUs(), out written, out waitUs);
                }
                catch (PseudostreamException e)
                {
                    // The headers are out: end the response short (the client sees
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
                reply.BodyStarted = true;
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
        /// The file under the media root for this URL (ASP.NET has percent-decoded
        /// the path once). Null with <paramref name="refusal"/> for a path that is
        /// malformed or leaves the root; otherwise the path, with the errno of a
        /// failed lookup inside the root in <paramref name="errno"/> (0: found).
        /// </summary>
        private static string MapPath(HostConfig cfg, HttpRequest request, out int errno, out int refusal)
        {
            errno = 0;
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
            string real = Posix.RealPath(lexical, out errno);
            if (real == null)
                return lexical;
            if (!real.StartsWith(cfg.MediaRoot + "/", StringComparison.Ordinal))
                return null; // a symlink leading out of the root
            return real;
        }

        /// <summary>The query string as the client sent it, without '?'.</summary>
        private static string RawQuery(HttpRequest request)
        {
            string raw = request.RawUrl ?? "";
            int q = raw.IndexOf('?');
            return q < 0 ? "" : raw.Substring(q + 1);
        }

        /// <summary>A monotonic clock in microseconds.</summary>
        private static ulong NowUs()
        {
            long ticks = Stopwatch.GetTimestamp();
            long freq = Stopwatch.Frequency;
            return (ulong)(ticks / freq) * 1000000UL + (ulong)(ticks % freq) * 1000000UL / (ulong)freq;
        }

        internal static void Log(string message)
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
            private const string Prefix = "pseudostream:";
            private const string MediaRootKey = "mediaRoot";

            public string MediaRoot;
            public Options Options;

            public static HostConfig Load(NameValueCollection settings)
            {
                string root = settings[Prefix + MediaRootKey];
                if (string.IsNullOrEmpty(root))
                    throw new InvalidOperationException("appSettings " + Prefix + MediaRootKey + " is not set");
                if (root.StartsWith("~/", StringComparison.Ordinal))
                    root = Path.Combine(HttpRuntime.AppDomainAppPath, root.Substring(2));
                int errno;
                string real = Posix.RealPath(root, out errno);
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
                if (!Reply.Exact)
                    Log("this System.Web adds response headers of its own (no HttpResponse.SetCachedHeaders)");
                return new HostConfig { MediaRoot = real.TrimEnd('/'), Options = options };
            }

            /// <summary>
            /// Every pseudostream:KEY but mediaRoot goes to the library by name, in
            /// the order of the configuration: the library reads startUnit as
            /// start_unit and param:start as param_start, holds every default and
            /// refuses an unknown key or a bad value naming both.
            /// </summary>
            private static void Configure(Options options, NameValueCollection settings)
            {
                // The older handler also took the burst in seconds from a bare "duration".
                string duration = settings["duration"];
                if (duration != null)
                    Set(options, "duration", "burst_seconds", duration);
                foreach (string key in settings.AllKeys)
                {
                    if (key == null || !key.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase))
                        continue;
                    string name = key.Substring(Prefix.Length);
                    if (!name.Equals(MediaRootKey, StringComparison.OrdinalIgnoreCase))
                        Set(options, key, name, settings[key]);
                }
            }

            private static void Set(Options options, string setting, string key, string value)
            {
                try
                {
                    options.Set(key, value);
                }
                catch (PseudostreamException e)
                {
                    throw new InvalidOperationException("appSettings " + setting + ": " + e.Message
                        + "\nthe library's keys (appSettings pseudostream:KEY):\n" + Options.Describe());
                }
            }
        }
    }

    /// <summary>
    /// The status line and headers of one answer, exactly as given. System.Web
    /// adds headers of its own when it sends the header block (Mono 6.8:
    /// Cache-Control "private" on every answer, Content-Type text/html unless
    /// cleared, Content-Length of the buffered bytes on a final flush,
    /// X-AspNet-Version), and no public setting removes Cache-Control. Mono's
    /// HttpResponse sends a header collection handed to its internal
    /// SetCachedHeaders (how its output cache replays a stored answer) instead
    /// of building its own, so the library's headers go that way; elsewhere the
    /// public API comes as close as it can.
    /// </summary>
    internal sealed class Reply
    {
        private static readonly MethodInfo SetCachedHeaders = typeof(HttpResponse).GetMethod("SetCachedHeaders",
            BindingFlags.Instance | BindingFlags.NonPublic, null, new[] { typeof(NameValueCollection) }, null);

        private readonly HttpResponse response;

        /// <summary>Body bytes went out: the status can no longer change.</summary>
        public bool BodyStarted;

        public Reply(HttpResponse response)
        {
            this.response = response;
            response.TrySkipIisCustomErrors = true;
            // Bytes leave as written (paced bodies), and no Content-Length is
            // computed from a buffer at the end.
            response.BufferOutput = false;
        }

        /// <summary>True when the headers sent are exactly those given.</summary>
        public static bool Exact
        {
            get { return SetCachedHeaders != null; }
        }

        public void Head(int status, IList<KeyValuePair<string, string>> headers)
        {
            response.StatusCode = status;
            if (SetCachedHeaders != null)
            {
                var all = new NameValueCollection(headers.Count, StringComparer.OrdinalIgnoreCase);
                foreach (KeyValuePair<string, string> h in headers)
                {
                    all.Add(h.Key, h.Value);
                    // Also tells Mono the length, so that it does not frame the body
                    // in chunks (HTTP/1.1 without a CGI gateway, as under xsp4); the
                    // header itself goes out once, from the collection.
                    if (h.Key.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
                        response.AppendHeader(h.Key, h.Value);
                }
                SetCachedHeaders.Invoke(response, new object[] { all });
                return;
            }
            response.ContentType = null;
            foreach (KeyValuePair<string, string> h in headers)
            {
                if (h.Key.Equals("Content-Type", StringComparison.OrdinalIgnoreCase))
                    response.ContentType = h.Value;
                else
                    response.AppendHeader(h.Key, h.Value);
            }
        }

        /// <summary>The handler's own short answer (a refusal, a failure), body included.</summary>
        public void Text(int status, string message)
        {
            byte[] body = Encoding.UTF8.GetBytes(message + "\n");
            Head(status, new[]
            {
                new KeyValuePair<string, string>("Content-Type", "text/plain; charset=utf-8"),
                new KeyValuePair<string, string>("Content-Length", body.Length.ToString(CultureInfo.InvariantCulture)),
            });
            BodyStarted = true;
            response.OutputStream.Write(body, 0, body.Length);
        }
    }

    /// <summary>realpath(3): how the handler keeps symlinks from leading out of the media root.</summary>
    internal static class Posix
    {
        private const int PathMax = 4096;

        [DllImport("libc.so.6", EntryPoint = "realpath", CallingConvention = CallingConvention.Cdecl,
            SetLastError = true)]
        private static extern IntPtr realpath(byte[] path, [Out] byte[] resolved);

        /// <summary>The canonical absolute path, or null with the errno when it cannot be resolved.</summary>
        public static string RealPath(string path, out int errno)
        {
            var resolved = new byte[PathMax];
            errno = 0;
            if (realpath(Utf8.ToC(path), resolved) == IntPtr.Zero)
            {
                errno = Marshal.GetLastWin32Error();
                // A failure without an errno still must not pass for a file found.
                if (errno == 0)
                    errno = Enoent;
                return null;
            }
            int n = Array.IndexOf(resolved, (byte)0);
            return Encoding.UTF8.GetString(resolved, 0, n < 0 ? resolved.Length : n);
        }

        private const int Enoent = 2;
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
