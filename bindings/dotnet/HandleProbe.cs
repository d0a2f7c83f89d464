// A console check of the P/Invoke layer alone, without ASP.NET: runs the
// handler's per-request flow (exchange, headers, open, respond, read the
// headers, copy the body to the end, free) many times in one process and
// reports the resident memory after a warm-up and at the end. A handle that
// is not freed shows up as steady growth. Used by tests/host_dotnet.rs;
// build.sh builds it.
//
// Usage: mono HandleProbe.exe FILE.flv ITERATIONS

using System;
using System.Collections.Generic;
using System.IO;
using Pseudostream;

internal static class HandleProbe
{
    private const int Eacces = 13;

    private static int Main(string[] args)
    {
        if (args.Length != 2)
        {
            Console.Error.WriteLine("usage: HandleProbe.exe FILE.flv ITERATIONS");
            return 2;
        }
        string file = args[0];
        int iterations = int.Parse(args[1]);
        var buf = new byte[64 * 1024];
        ulong bytes = 0;
        long warm = 0;
        using (var options = new Options())
        {
            options.Set("start_unit", "seconds");
            for (int i = 0; i < iterations; i++)
            {
                if (i == iterations / 5)
                {
                    Settle();
                    warm = RssKb();
                }
                bytes += Once(options, file, string.Format("start={0}.{1}&end=12", i % 9, i % 10), buf);
                if (i % 7 == 0)
                    Rejected(options, file, buf);
            }
        }
        Settle();
        long end = RssKb();
        Console.WriteLine("iterations {0} bytes {1} rss_warm_kb {2} rss_end_kb {3}", iterations, bytes, warm, end);
        return 0;
    }

    private static ulong Once(Options options, string file, string query, byte[] buf)
    {
        using (var x = Exchange.New("GET", query))
        {
            x.SetHeader("User-Agent", "HandleProbe");
            if (!x.WantsFile)
                throw new InvalidOperationException("GET without a file");
            x.OpenPath(file);
            x.Respond(options);
            PsExchangeInfo info = x.Info;
            if (info.Status != 200)
                throw new InvalidOperationException("status " + info.Status + ": " + x.Detail);
            Dictionary<string, string> headers = HeaderMap(x);
            if (!headers.ContainsKey("etag") || headers["content-type"] != "video/x-flv")
                throw new InvalidOperationException("an answer without ETag or type");
            ulong sent = Drain(x, buf);
            if (sent != info.BodyLength || sent != info.ContentLength)
                throw new InvalidOperationException("body length differs from the answer's");
            return sent;
        }
    }

    /// <summary>Answers of 400 and above: every one must leave nothing behind either.</summary>
    private static void Rejected(Options options, string file, byte[] buf)
    {
        Expect(400, "GET", "start=abc", x => x.OpenPath(file), options, buf);
        Expect(404, "GET", "", x => x.OpenPath(file + ".missing"), options, buf);
        Expect(403, "HEAD", "", x => x.OpenFailed(Eacces, file), options, buf);
        Expect(416, "GET", "start=99999", x => x.OpenPath(file), options, buf);
        Expect(405, "POST", "start=1", null, options, buf);
        try
        {
            options.Set("no_such_key", "1");
        }
        catch (PseudostreamException e)
        {
            if (e.Status != PsStatus.InvalidArg || e.Message.IndexOf("no_such_key", StringComparison.Ordinal) < 0)
                throw;
            return;
        }
        throw new InvalidOperationException("an unknown key was accepted");
    }

    private static void Expect(uint status, string method, string query, Action<Exchange> open, Options options,
        byte[] buf)
    {
        using (var x = Exchange.New(method, query))
        {
            if (open != null)
                open(x);
            x.Respond(options);
            PsExchangeInfo info = x.Info;
            if (info.Status != status || x.Detail.Length == 0)
                throw new InvalidOperationException(method + " ?" + query + ": status " + info.Status
                    + " (want " + status + "), detail \"" + x.Detail + "\"");
            HeaderMap(x);
            if (Drain(x, buf) != info.BodyLength)
                throw new InvalidOperationException("error body length differs from the answer's");
        }
    }

    private static Dictionary<string, string> HeaderMap(Exchange x)
    {
        var map = new Dictionary<string, string>();
        foreach (KeyValuePair<string, string> h in x.Headers())
            map[h.Key.ToLowerInvariant()] = h.Value;
        return map;
    }

    private static ulong Drain(Exchange x, byte[] buf)
    {
        ulong sent = 0;
        while (true)
        {
            int n;
            ulong wait;
            uint state = x.Fill(buf, 0, out n, out wait);
            if (state == PsFillState.Done)
                return sent;
            if (state != PsFillState.Data)
                throw new InvalidOperationException("an unpaced body asked to wait");
            sent += (ulong)n;
        }
    }

    private static void Settle()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }

    private static long RssKb()
    {
        foreach (string line in File.ReadAllLines("/proc/self/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(line.Substring(6).Trim().Split(' ')[0]);
        }
        return 0;
    }
}
