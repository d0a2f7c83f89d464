// libpseudostream for .NET: P/Invoke declarations matching
// include/pseudostream.h, SafeHandle owners for every handle kind, and thin
// managed wrappers that turn a ps_status into a PseudostreamException.
//
// Portable on purpose: no Mono-only API, no `bool` or `string` in any
// signature (strings go in as NUL-terminated UTF-8 byte arrays and come back
// as pointers decoded here), so the same file builds for Mono (mcs) and for
// modern .NET. The library name "pseudostream" goes to the installed
// library by its SONAME, libpseudostream.so.0, through the
// Pseudostream.dll.config beside the assembly (a Mono dllmap; build.sh
// writes it). PSEUDOSTREAM_LIB, when set, names another file (a build
// tree's target/release/libpseudostream.so): the wrappers load it first,
// and the loader then finds it under its SONAME.
//
// No seek logic lives here: every decision is the library's.

using System;
using System.Runtime.InteropServices;
using System.Text;

namespace Pseudostream
{
    /// <summary>ps_status values (fixed numbers, never reused).</summary>
    public static class PsStatus
    {
        public const uint Ok = 0;
        public const uint NullArg = 1;
        public const uint Panic = 2;
        public const uint BadHandle = 3;
        public const uint InvalidArg = 4;
        public const uint BufferTooSmall = 5;
        public const uint Io = 6;
        public const uint NotFound = 7;
        public const uint Permission = 8;
        public const uint UnsupportedFormat = 9;
        public const uint MalformedMedia = 10;
        public const uint BadRequest = 11;
        public const uint RangeNotSatisfiable = 12;
        public const uint SourceChanged = 13;
        public const uint NotCached = 14;
    }

    /// <summary>ps_prefix_mode values.</summary>
    public static class PsPrefixMode
    {
        public const uint None = 0;
        public const uint Header = 1;
        public const uint Init = 2;
        public const uint Full = 3;
    }

    /// <summary>ps_unit values.</summary>
    public static class PsUnit
    {
        public const uint Bytes = 0;
        public const uint Seconds = 1;
        public const uint Milliseconds = 2;
    }

    /// <summary>ps_fill_state values.</summary>
    public static class PsFillState
    {
        public const uint Data = 0;
        public const uint Wait = 1;
        public const uint Done = 2;
    }

    /// <summary>ps_index_origin values.</summary>
    public static class PsIndexOrigin
    {
        public const uint Metadata = 1;
        public const uint MetadataStale = 2;
        public const uint Scanned = 3;
    }

    /// <summary>ps_param values: the query parameters a host may rename.</summary>
    public static class PsParam
    {
        public const uint Start = 0;
        public const uint End = 1;
        public const uint InitialBytes = 2;
        public const uint FileStart = 3;
        public const uint ByteStart = 4;
        public const uint ByteEnd = 5;
        public const uint Burst = 6;
        public const uint Rate = 7;
    }

    /// <summary>ps_cut_mode values: where MP4 cuts start to be presented.</summary>
    public static class PsCutMode
    {
        /// <summary>At the requested time; edit lists hide the frames from the keyframe up to it. Default.</summary>
        public const uint Exact = 0;
        /// <summary>At the keyframe, nothing hidden, for players that ignore edit lists.</summary>
        public const uint Keyframe = 1;
    }

    /// <summary>ps_media_info, field for field.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct PsMediaInfo
    {
        public uint Format;
        public uint IndexOrigin;
        public ulong Size;
        public ulong StartMs;
        public ulong DurationMs;
        public ulong BitrateBps;
        public ulong KeyframeCount;
        public uint HasAudio;
        public uint HasVideo;
        public uint VideoCodec;
        public uint AudioCodec;
        public uint Width;
        public uint Height;
        public uint SeekPointsFromAudio;
        public uint Reserved;
    }

    /// <summary>ps_plan_info, field for field.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct PsPlanInfo
    {
        public ulong Length;
        public ulong PrefixLength;
        public ulong FileFrom;
        public ulong FileTo;
        public ulong StartMs;
        public ulong EndMs;
        public ulong BurstBytes;
        public ulong RateBytesPerS;
        public uint WholeFile;
        public uint Format;
    }

    /// <summary>ps_response, field for field.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct PsResponse
    {
        public uint Status;
        public uint Reserved;
        public ulong First;
        public ulong Length;
        public ulong BurstBytes;
        public ulong RateBytesPerS;
    }

    /// <summary>ps_slice, field for field.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct PsSlice
    {
        public ulong PrefixFrom;
        public ulong PrefixTo;
        public ulong FileFrom;
        public ulong FileTo;
    }

    /// <summary>ps_read_at_fn: returns 0 on success, anything else on failure.</summary>
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    public delegate int PsReadAtFn(IntPtr ctx, ulong offset, IntPtr buf, UIntPtr len, out UIntPtr outRead);

    /// <summary>
    /// Loads the file PSEUDOSTREAM_LIB names, if any, before the first
    /// P/Invoke call resolves "pseudostream": the dynamic loader then finds
    /// it under its SONAME. Mono resolves a P/Invoke target before the
    /// declaring class's static constructor runs, so every wrapper class
    /// calls this from its own; code that calls NativeMethods directly
    /// calls Library.Load() first.
    /// </summary>
    static class BuildTreeLibrary
    {
        const int RtldNow = 2;
        const int RtldGlobal = 0x100;
        static readonly object Gate = new object();
        static bool loaded;

        [DllImport("libdl.so.2", EntryPoint = "dlopen")]
        static extern IntPtr DlOpen(byte[] file, int mode);

        [DllImport("libdl.so.2", EntryPoint = "dlerror")]
        static extern IntPtr DlError();

        internal static void Load()
        {
            lock (Gate)
            {
                if (loaded)
                {
                    return;
                }
                string path = Environment.GetEnvironmentVariable("PSEUDOSTREAM_LIB");
                if (!string.IsNullOrEmpty(path)
                    && DlOpen(Encoding.UTF8.GetBytes(path + "\0"), RtldNow | RtldGlobal) == IntPtr.Zero)
                {
                    throw new DllNotFoundException("PSEUDOSTREAM_LIB=" + path + ": "
                        + Marshal.PtrToStringAnsi(DlError()));
                }
                loaded = true;
            }
        }
    }

    /// <summary>The raw C ABI. Prefer the wrappers below.</summary>
    public static class NativeMethods
    {
        public const string Library = "pseudostream";

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern IntPtr ps_version();

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern IntPtr ps_strerror(uint status);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_status_http(uint status);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern IntPtr ps_last_error();

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_media_open(byte[] path, out MediaHandle media);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_media_open_fd(int fd, out MediaHandle media);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_media_open_fd_borrowed(int fd, ulong size, ulong device, ulong inode,
            long mtimeNs, out MediaHandle media);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_media_open_source(PsReadAtFn readAt, IntPtr ctx, ulong size,
            byte[] identity, long version, out MediaHandle media);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern void ps_media_free(IntPtr media);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_media_get_info(MediaHandle media, out PsMediaInfo info);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_media_keyframe(MediaHandle media, ulong index, out ulong timeMs,
            out ulong offset);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_media_info_json(MediaHandle media, [Out] byte[] buf, UIntPtr cap,
            out UIntPtr written);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_cache_set_capacity(ulong bytes);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_cache_clear();

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_mp4_set_moov_limit(ulong bytes);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_cache_stats(out ulong entries, out ulong bytes, out ulong hits,
            out ulong misses);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_plan_new(MediaHandle media, OptionsHandle options, RequestHandle request,
            out PlanHandle plan);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern void ps_plan_free(IntPtr plan);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_plan_get_info(PlanHandle plan, out PsPlanInfo info);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_plan_prefix(PlanHandle plan, out IntPtr data, out UIntPtr len);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_plan_etag(PlanHandle plan, out IntPtr etag);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_plan_content_type(PlanHandle plan, out IntPtr contentType);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_plan_respond(PlanHandle plan, byte[] range, byte[] ifMatch,
            byte[] ifNoneMatch, byte[] ifRange, out PsResponse response);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_plan_content_range(PlanHandle plan, ref PsResponse response,
            [Out] byte[] buf, UIntPtr cap, out UIntPtr written);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_plan_slice(PlanHandle plan, ulong first, ulong length, out PsSlice slice);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_options_new(out OptionsHandle options);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern void ps_options_free(IntPtr options);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_options_set_prefix_mode(OptionsHandle options, uint mode);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_options_set_start_unit(OptionsHandle options, uint unit);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_options_set_param_name(OptionsHandle options, uint param, byte[] name);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_options_set_burst_bytes(OptionsHandle options, ulong bytes);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_options_set_burst_ms(OptionsHandle options, ulong mediaMs);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_options_set_rate(OptionsHandle options, ulong bytesPerS);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_options_set_rate_auto(OptionsHandle options, uint permille);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_options_set_client_pacing(OptionsHandle options, uint allow);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_options_set_metadata(OptionsHandle options, uint mode);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_options_set_cut_mode(OptionsHandle options, uint mode);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_request_parse(OptionsHandle options, byte[] query, UIntPtr len,
            out RequestHandle request);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_request_new(out RequestHandle request);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern void ps_request_free(IntPtr request);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_request_set_start(RequestHandle request, uint unit, ulong value);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_request_set_end(RequestHandle request, uint unit, ulong value);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_request_set_prefix_mode(RequestHandle request, uint mode);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_request_set_initial_bytes(RequestHandle request, ulong bytes);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_stream_new(MediaHandle media, PlanHandle plan, ulong first, ulong length,
            out StreamHandle stream);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_stream_set_pacing(StreamHandle stream, ulong burstBytes, ulong rateBytesPerS);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_stream_fill(StreamHandle stream, [Out] byte[] buf, UIntPtr cap, ulong nowUs,
            out UIntPtr written, out ulong waitUs, out uint state);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_stream_remaining(StreamHandle stream, out ulong remaining);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern void ps_stream_free(IntPtr stream);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_pacer_new(ulong burstBytes, ulong rateBytesPerS, out PacerHandle pacer);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_pacer_allow(PacerHandle pacer, ulong nowUs, ulong want, out ulong allowed,
            out ulong waitUs);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_pacer_consume(PacerHandle pacer, ulong sent);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern void ps_pacer_free(IntPtr pacer);
    }

    /// <summary>UTF-8 in and out of the C ABI without marshaller defaults.</summary>
    public static class Utf8
    {
        /// <summary>NUL-terminated UTF-8 bytes of <paramref name="s"/>; null stays null (a C NULL).</summary>
        public static byte[] ToC(string s)
        {
            if (s == null)
                return null;
            int n = Encoding.UTF8.GetByteCount(s);
            var bytes = new byte[n + 1];
            Encoding.UTF8.GetBytes(s, 0, s.Length, bytes, 0);
            return bytes;
        }

        /// <summary>Decodes a NUL-terminated UTF-8 string owned by the library.</summary>
        public static string FromC(IntPtr p)
        {
            if (p == IntPtr.Zero)
                return null;
            int n = 0;
            while (Marshal.ReadByte(p, n) != 0)
                n++;
            var bytes = new byte[n];
            Marshal.Copy(p, bytes, 0, n);
            return Encoding.UTF8.GetString(bytes);
        }

        /// <summary>Decodes the first <paramref name="n"/> bytes of <paramref name="buf"/>.</summary>
        public static string FromBuffer(byte[] buf, UIntPtr n)
        {
            return Encoding.UTF8.GetString(buf, 0, checked((int)n.ToUInt64()));
        }
    }

    /// <summary>A failed call: the status, the HTTP status to answer with and the library's detail.</summary>
    public class PseudostreamException : Exception
    {
        public uint Status { get; private set; }
        public int HttpStatus { get; private set; }

        public PseudostreamException(uint status, string detail)
            : base(string.IsNullOrEmpty(detail) ? Library.StrError(status) : detail)
        {
            Status = status;
            HttpStatus = (int)NativeMethods.ps_status_http(status);
        }

        /// <summary>Throws for any status but PS_OK; reads ps_last_error on the calling thread.</summary>
        public static void Check(uint status)
        {
            if (status != PsStatus.Ok)
                throw new PseudostreamException(status, Utf8.FromC(NativeMethods.ps_last_error()));
        }
    }

    /// <summary>Library-wide calls.</summary>
    public static class Library
    {
        static Library()
        {
            BuildTreeLibrary.Load();
        }

        /// <summary>Loads the library now (PSEUDOSTREAM_LIB's file when set).</summary>
        public static void Load()
        {
        }

        public static string Version
        {
            get { return Utf8.FromC(NativeMethods.ps_version()); }
        }

        public static string StrError(uint status)
        {
            return Utf8.FromC(NativeMethods.ps_strerror(status));
        }

        public static int StatusHttp(uint status)
        {
            return (int)NativeMethods.ps_status_http(status);
        }

        public static string LastError()
        {
            return Utf8.FromC(NativeMethods.ps_last_error());
        }

        public static void SetCacheCapacity(ulong bytes)
        {
            PseudostreamException.Check(NativeMethods.ps_cache_set_capacity(bytes));
        }

        public static void ClearCache()
        {
            PseudostreamException.Check(NativeMethods.ps_cache_clear());
        }

        /// <summary>The largest MP4 moov box read (default 64 MiB; 0 restores it); files with
        /// a larger one get 415. Process-wide: every application in the process shares it.</summary>
        public static void SetMp4MaxMoovSize(ulong bytes)
        {
            PseudostreamException.Check(NativeMethods.ps_mp4_set_moov_limit(bytes));
        }

        /// <summary>The process-wide index cache's entries, bytes used, hits and misses.</summary>
        public static void CacheStats(out ulong entries, out ulong bytes, out ulong hits, out ulong misses)
        {
            PseudostreamException.Check(NativeMethods.ps_cache_stats(out entries, out bytes, out hits, out misses));
        }
    }

    /// <summary>Common base: a pointer that is invalid when zero.</summary>
    public abstract class PsHandle : SafeHandle
    {
        protected PsHandle() : base(IntPtr.Zero, true)
        {
        }

        public override bool IsInvalid
        {
            get { return handle == IntPtr.Zero; }
        }
    }

    public sealed class MediaHandle : PsHandle
    {
        protected override bool ReleaseHandle()
        {
            NativeMethods.ps_media_free(handle);
            return true;
        }
    }

    public sealed class OptionsHandle : PsHandle
    {
        protected override bool ReleaseHandle()
        {
            NativeMethods.ps_options_free(handle);
            return true;
        }
    }

    public sealed class RequestHandle : PsHandle
    {
        protected override bool ReleaseHandle()
        {
            NativeMethods.ps_request_free(handle);
            return true;
        }
    }

    public sealed class PlanHandle : PsHandle
    {
        protected override bool ReleaseHandle()
        {
            NativeMethods.ps_plan_free(handle);
            return true;
        }
    }

    public sealed class StreamHandle : PsHandle
    {
        protected override bool ReleaseHandle()
        {
            NativeMethods.ps_stream_free(handle);
            return true;
        }
    }

    public sealed class PacerHandle : PsHandle
    {
        protected override bool ReleaseHandle()
        {
            NativeMethods.ps_pacer_free(handle);
            return true;
        }
    }

    /// <summary>An opened media file and its keyframe index; share it between threads freely.</summary>
    public sealed class Media : IDisposable
    {
        static Media()
        {
            BuildTreeLibrary.Load();
        }

        public MediaHandle Handle { get; private set; }

        private Media(MediaHandle handle)
        {
            Handle = handle;
        }

        /// <summary>Opens and indexes <paramref name="path"/> (or takes the index from the cache).</summary>
        public static Media Open(string path)
        {
            if (path == null)
                throw new ArgumentNullException("path");
            MediaHandle h;
            PseudostreamException.Check(NativeMethods.ps_media_open(Utf8.ToC(path), out h));
            return new Media(h);
        }

        public PsMediaInfo Info
        {
            get
            {
                PsMediaInfo info;
                PseudostreamException.Check(NativeMethods.ps_media_get_info(Handle, out info));
                return info;
            }
        }

        /// <summary>Keyframe <paramref name="index"/>: its time (ms) and file offset.</summary>
        public void Keyframe(ulong index, out ulong timeMs, out ulong offset)
        {
            PseudostreamException.Check(NativeMethods.ps_media_keyframe(Handle, index, out timeMs, out offset));
        }

        /// <summary>Media information and keyframe list as JSON.</summary>
        public string InfoJson()
        {
            UIntPtr needed;
            uint st = NativeMethods.ps_media_info_json(Handle, null, UIntPtr.Zero, out needed);
            if (st != PsStatus.BufferTooSmall)
                PseudostreamException.Check(st);
            var buf = new byte[checked((int)needed.ToUInt64())];
            UIntPtr written;
            PseudostreamException.Check(NativeMethods.ps_media_info_json(Handle, buf, needed, out written));
            return Utf8.FromBuffer(buf, written);
        }

        public void Dispose()
        {
            Handle.Dispose();
        }
    }

    /// <summary>Host configuration: set it up once, then share it read-only.</summary>
    public sealed class Options : IDisposable
    {
        static Options()
        {
            BuildTreeLibrary.Load();
        }

        public OptionsHandle Handle { get; private set; }

        public Options()
        {
            OptionsHandle h;
            PseudostreamException.Check(NativeMethods.ps_options_new(out h));
            Handle = h;
        }

        public void SetPrefixMode(uint mode)
        {
            PseudostreamException.Check(NativeMethods.ps_options_set_prefix_mode(Handle, mode));
        }

        public void SetStartUnit(uint unit)
        {
            PseudostreamException.Check(NativeMethods.ps_options_set_start_unit(Handle, unit));
        }

        /// <summary>Renames a query parameter (a PsParam); "" turns it off.</summary>
        public void SetParamName(uint param, string name)
        {
            PseudostreamException.Check(NativeMethods.ps_options_set_param_name(Handle, param, Utf8.ToC(name ?? "")));
        }

        public void SetBurstBytes(ulong bytes)
        {
            PseudostreamException.Check(NativeMethods.ps_options_set_burst_bytes(Handle, bytes));
        }

        public void SetBurstMs(ulong mediaMs)
        {
            PseudostreamException.Check(NativeMethods.ps_options_set_burst_ms(Handle, mediaMs));
        }

        public void SetRate(ulong bytesPerS)
        {
            PseudostreamException.Check(NativeMethods.ps_options_set_rate(Handle, bytesPerS));
        }

        public void SetRateAuto(uint permille)
        {
            PseudostreamException.Check(NativeMethods.ps_options_set_rate_auto(Handle, permille));
        }

        public void SetClientPacing(bool allow)
        {
            PseudostreamException.Check(NativeMethods.ps_options_set_client_pacing(Handle, allow ? 1u : 0u));
        }

        /// <summary>When files are served with their keyframes listed in a rewritten
        /// onMetaData: 0 off, 1 missing (default), 2 always.</summary>
        public void SetMetadata(uint mode)
        {
            PseudostreamException.Check(NativeMethods.ps_options_set_metadata(Handle, mode));
        }

        /// <summary>Where MP4 cuts start to be presented (a PsCutMode; default Exact).</summary>
        public void SetCutMode(uint mode)
        {
            PseudostreamException.Check(NativeMethods.ps_options_set_cut_mode(Handle, mode));
        }

        public void Dispose()
        {
            Handle.Dispose();
        }
    }

    /// <summary>One parsed request.</summary>
    public sealed class Request : IDisposable
    {
        static Request()
        {
            BuildTreeLibrary.Load();
        }

        public RequestHandle Handle { get; private set; }

        private Request(RequestHandle handle)
        {
            Handle = handle;
        }

        /// <summary>Parses a raw query string (without '?') under <paramref name="options"/>.</summary>
        public static Request Parse(Options options, string query)
        {
            var bytes = Encoding.UTF8.GetBytes(query ?? "");
            RequestHandle h;
            PseudostreamException.Check(NativeMethods.ps_request_parse(options.Handle, bytes,
                new UIntPtr((uint)bytes.Length), out h));
            return new Request(h);
        }

        /// <summary>A request for the whole file, to refine with the setters.</summary>
        public static Request New()
        {
            RequestHandle h;
            PseudostreamException.Check(NativeMethods.ps_request_new(out h));
            return new Request(h);
        }

        public void SetStart(uint unit, ulong value)
        {
            PseudostreamException.Check(NativeMethods.ps_request_set_start(Handle, unit, value));
        }

        public void SetEnd(uint unit, ulong value)
        {
            PseudostreamException.Check(NativeMethods.ps_request_set_end(Handle, unit, value));
        }

        public void SetPrefixMode(uint mode)
        {
            PseudostreamException.Check(NativeMethods.ps_request_set_prefix_mode(Handle, mode));
        }

        public void SetInitialBytes(ulong bytes)
        {
            PseudostreamException.Check(NativeMethods.ps_request_set_initial_bytes(Handle, bytes));
        }

        public void Dispose()
        {
            Handle.Dispose();
        }
    }

    /// <summary>What to send for one request; immutable.</summary>
    public sealed class Plan : IDisposable
    {
        static Plan()
        {
            BuildTreeLibrary.Load();
        }

        public PlanHandle Handle { get; private set; }

        private Plan(PlanHandle handle)
        {
            Handle = handle;
        }

        public static Plan New(Media media, Options options, Request request)
        {
            PlanHandle h;
            PseudostreamException.Check(NativeMethods.ps_plan_new(media.Handle, options.Handle, request.Handle, out h));
            return new Plan(h);
        }

        public PsPlanInfo Info
        {
            get
            {
                PsPlanInfo info;
                PseudostreamException.Check(NativeMethods.ps_plan_get_info(Handle, out info));
                return info;
            }
        }

        public string ETag
        {
            get
            {
                IntPtr p;
                PseudostreamException.Check(NativeMethods.ps_plan_etag(Handle, out p));
                return Utf8.FromC(p);
            }
        }

        public string ContentType
        {
            get
            {
                IntPtr p;
                PseudostreamException.Check(NativeMethods.ps_plan_content_type(Handle, out p));
                return Utf8.FromC(p);
            }
        }

        /// <summary>Evaluates Range and the validators (null = header absent).</summary>
        public PsResponse Respond(string range, string ifMatch, string ifNoneMatch, string ifRange)
        {
            PsResponse r;
            PseudostreamException.Check(NativeMethods.ps_plan_respond(Handle, Utf8.ToC(range), Utf8.ToC(ifMatch),
                Utf8.ToC(ifNoneMatch), Utf8.ToC(ifRange), out r));
            return r;
        }

        /// <summary>The Content-Range value for a 206 or 416 response ("" otherwise).</summary>
        public string ContentRange(PsResponse response)
        {
            var buf = new byte[128];
            UIntPtr written;
            uint st = NativeMethods.ps_plan_content_range(Handle, ref response, buf, new UIntPtr((uint)buf.Length),
                out written);
            if (st == PsStatus.BufferTooSmall)
            {
                buf = new byte[checked((int)written.ToUInt64())];
                st = NativeMethods.ps_plan_content_range(Handle, ref response, buf, new UIntPtr((uint)buf.Length),
                    out written);
            }
            PseudostreamException.Check(st);
            return Utf8.FromBuffer(buf, written);
        }

        public PsSlice Slice(ulong first, ulong length)
        {
            PsSlice s;
            PseudostreamException.Check(NativeMethods.ps_plan_slice(Handle, first, length, out s));
            return s;
        }

        public void Dispose()
        {
            Handle.Dispose();
        }
    }

    /// <summary>Produces one response window under the plan's pacing; one thread at a time.</summary>
    public sealed class ResponseStream : IDisposable
    {
        static ResponseStream()
        {
            BuildTreeLibrary.Load();
        }

        public StreamHandle Handle { get; private set; }

        private ResponseStream(StreamHandle handle)
        {
            Handle = handle;
        }

        public static ResponseStream New(Media media, Plan plan, ulong first, ulong length)
        {
            StreamHandle h;
            PseudostreamException.Check(NativeMethods.ps_stream_new(media.Handle, plan.Handle, first, length, out h));
            return new ResponseStream(h);
        }

        public void SetPacing(ulong burstBytes, ulong rateBytesPerS)
        {
            PseudostreamException.Check(NativeMethods.ps_stream_set_pacing(Handle, burstBytes, rateBytesPerS));
        }

        /// <summary>
        /// Fills <paramref name="buf"/> as far as pacing allows at <paramref name="nowUs"/>. Returns a
        /// PsFillState; <paramref name="written"/> is set for Data, <paramref name="waitUs"/> for Wait.
        /// </summary>
        public uint Fill(byte[] buf, ulong nowUs, out int written, out ulong waitUs)
        {
            UIntPtr n;
            uint state;
            PseudostreamException.Check(NativeMethods.ps_stream_fill(Handle, buf, new UIntPtr((uint)buf.Length), nowUs,
                out n, out waitUs, out state));
            written = checked((int)n.ToUInt64());
            return state;
        }

        public ulong Remaining
        {
            get
            {
                ulong r;
                PseudostreamException.Check(NativeMethods.ps_stream_remaining(Handle, out r));
                return r;
            }
        }

        public void Dispose()
        {
            Handle.Dispose();
        }
    }

    /// <summary>A pacing clock alone (for hosts that send by other means).</summary>
    public sealed class Pacer : IDisposable
    {
        static Pacer()
        {
            BuildTreeLibrary.Load();
        }

        public PacerHandle Handle { get; private set; }

        public Pacer(ulong burstBytes, ulong rateBytesPerS)
        {
            PacerHandle h;
            PseudostreamException.Check(NativeMethods.ps_pacer_new(burstBytes, rateBytesPerS, out h));
            Handle = h;
        }

        public ulong Allow(ulong nowUs, ulong want, out ulong waitUs)
        {
            ulong allowed;
            PseudostreamException.Check(NativeMethods.ps_pacer_allow(Handle, nowUs, want, out allowed, out waitUs));
            return allowed;
        }

        public void Consume(ulong sent)
        {
            PseudostreamException.Check(NativeMethods.ps_pacer_consume(Handle, sent));
        }

        public void Dispose()
        {
            Handle.Dispose();
        }
    }
}
