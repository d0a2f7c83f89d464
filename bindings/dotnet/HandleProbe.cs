// A console check of the P/Invoke layer alone, without ASP.NET: runs the
// handler's per-request flow (open, parse, plan, respond, stream to the end,
// dispose) many times in one process and reports the resident memory after a
// warm-up and at the end. A handle that is not freed shows up as steady
// growth. Used by tests/host_dotnet.rs; build.sh builds it.
//
// Usage: mono HandleProbe.exe FILE.flv ITERATIONS

using System;
using System.IO;
using Pseudostream;

internal static class HandleProbe
{
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
            options.SetStartUnit(PsUnit.Seconds);
            for (int i = 0; i < iterations; i++)
            {
                if (i == iterations / 5)
                {
                    Settle();
                    warm = RssKb();
                }
                bytes += Once(options, file, string.Format("start={0}.{1}&end=12", i % 9, i % 10), buf);
                if (i % 7 == 0)
                    Rejected(options, file);
            }
        }
        Settle();
        long end = RssKb();
        Console.WriteLine("iterations {0} bytes {1} rss_warm_kb {2} rss_end_kb {3}", iterations, bytes, warm, end);
        return 0;
    }

    private static ulong Once(Options options, string file, string query, byte[] buf)
    {
        ulong sent = 0;
        using (var media = Media.Open(file))
        using (var request = Request.Parse(options, query))
        using (var plan = Plan.New(media, options, request))
        {
            PsResponse r = plan.Respond(null, null, null, null); // a plain GET
            if (plan.ETag.Length == 0 || plan.ContentType != "video/x-flv")
                throw new InvalidOperationException("plan without ETag or type");
            using (var stream = ResponseStream.New(media, plan, r.First, r.Length))
            {
                while (true)
                {
                    int n;
                    ulong wait;
                    uint state = stream.Fill(buf, 0, out n, out wait);
                    if (state == PsFillState.Done)
                        break;
                    if (state != PsFillState.Data)
                        throw new InvalidOperationException("unpaced stream asked to wait");
                    sent += (ulong)n;
                }
            }
            if (sent != r.Length)
                throw new InvalidOperationException("stream length differs from the window");
        }
        return sent;
    }

    /// <summary>Error paths: every failure must leave nothing behind either.</summary>
    private static void Rejected(Options options, string file)
    {
        Expect(PsStatus.BadRequest, () => Request.Parse(options, "start=abc").Dispose());
        Expect(PsStatus.NotFound, () => Media.Open(file + ".missing").Dispose());
        using (var media = Media.Open(file))
        using (var request = Request.Parse(options, "start=99999"))
            Expect(PsStatus.RangeNotSatisfiable, () => Plan.New(media, options, request).Dispose());
    }

    private static void Expect(uint status, Action action)
    {
        try
        {
            action();
        }
        catch (PseudostreamException e)
        {
            if (e.Status != status || e.HttpStatus < 400 || e.Message.Length == 0)
                throw;
            return;
        }
        throw new InvalidOperationException("expected status " + status);
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
