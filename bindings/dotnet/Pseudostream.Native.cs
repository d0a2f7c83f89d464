// libpseudostream for .NET: P/Invoke declarations of the calls a host needs
// (include/pseudostream.h: the exchange, options by name), SafeHandle owners
// for both handle kinds, and thin managed wrappers that turn a ps_status
// into a PseudostreamException.
//
// Portable on purpose: no Mono-only API, no `bool` or `string` in any
// signature (strings go in as UTF-8 byte arrays, NUL-terminated or with a
// length, and come back as pointers decoded here), so the same file builds
// for Mono (mcs) and for modern .NET. The library name "pseudostream" goes
// to the installed library by its SONAME, libpseudostream.so.0, through the
// Pseudostream.dll.config beside the assembly (a Mono dllmap; build.sh
// writes it). PSEUDOSTREAM_LIB, when set, names another file (a build
// tree's target/release/libpseudostream.so): the wrappers load it first,
// and the loader then finds it under its SONAME.
//
// No HTTP logic lives here: the library decides the status, the headers
// and the body; a host copies them.

using System;
using System.Collections.Generic;
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

    /// <summary>ps_fill_state values.</summary>
    public static class PsFillState
    {
        public const uint Data = 0;
        public const uint Wait = 1;
        public const uint Done = 2;
    }

    /// <summary>ps_exchange_info, field for field.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct PsExchangeInfo
    {
        /// <summary>The HTTP status of the answer.</summary>
        public uint Status;
        /// <summary>1 when the headers hold a Content-Length.</summary>
        public uint HasContentLength;
        public ulong ContentLength;
        /// <summary>Body bytes to send: 0 for HEAD, 204 and 304.</summary>
        public ulong BodyLength;
        public ulong BurstBytes;
        /// <summary>The body's pacing, bytes per second (0: unpaced).</summary>
        public ulong RateBytesPerS;
        public uint HeaderCount;
        public uint Reserved;
    }

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
        public static extern IntPtr ps_last_error();

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_options_new(out OptionsHandle options);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_options_set(OptionsHandle options, byte[] key, byte[] value);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_options_describe([Out] byte[] buf, UIntPtr cap, out UIntPtr written);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern void ps_options_free(IntPtr options);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_exchange_new(byte[] method, UIntPtr methodLen, byte[] query, UIntPtr queryLen,
            out ExchangeHandle exchange);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_exchange_set_header(ExchangeHandle exchange, byte[] name, UIntPtr nameLen,
            byte[] value, UIntPtr valueLen);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_exchange_wants_file(ExchangeHandle exchange, out uint wants);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_exchange_open_path(ExchangeHandle exchange, byte[] path);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_exchange_open_failed(ExchangeHandle exchange, int error, byte[] name);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_exchange_respond(ExchangeHandle exchange, OptionsHandle options);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_exchange_get_info(ExchangeHandle exchange, out PsExchangeInfo info);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_exchange_header(ExchangeHandle exchange, UIntPtr index, out IntPtr name,
            out UIntPtr nameLen, out IntPtr value, out UIntPtr valueLen);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_exchange_detail(ExchangeHandle exchange, out IntPtr detail);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern uint ps_exchange_fill(ExchangeHandle exchange, [Out] byte[] buf, UIntPtr cap,
            ulong nowUs, out UIntPtr written, out ulong waitUs, out uint state);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
        public static extern void ps_exchange_free(IntPtr exchange);
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
            return FromPointer(p, new UIntPtr((uint)n));
        }

        /// <summary>Decodes <paramref name="n"/> bytes at <paramref name="p"/>.</summary>
        public static string FromPointer(IntPtr p, UIntPtr n)
        {
            var bytes = new byte[checked((int)n.ToUInt64())];
            if (bytes.Length > 0)
                Marshal.Copy(p, bytes, 0, bytes.Length);
            return Encoding.UTF8.GetString(bytes);
        }

        /// <summary>Decodes the first <paramref name="n"/> bytes of <paramref name="buf"/>.</summary>
        public static string FromBuffer(byte[] buf, UIntPtr n)
        {
            return Encoding.UTF8.GetString(buf, 0, checked((int)n.ToUInt64()));
        }
    }

    /// <summary>A failed call: its status and the library's detail (which names key and value for options).</summary>
    public class PseudostreamException : Exception
    {
        public uint Status { get; private set; }

        public PseudostreamException(uint status, string detail)
            : base(string.IsNullOrEmpty(detail) ? Library.StrError(status) : detail)
        {
            Status = status;
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

        public static string LastError()
        {
            return Utf8.FromC(NativeMethods.ps_last_error());
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

    public sealed class OptionsHandle : PsHandle
    {
        protected override bool ReleaseHandle()
        {
            NativeMethods.ps_options_free(handle);
            return true;
        }
    }

    public sealed class ExchangeHandle : PsHandle
    {
        protected override bool ReleaseHandle()
        {
            NativeMethods.ps_exchange_free(handle);
            return true;
        }
    }

    /// <summary>How a host serves, set by the library's key names; configure once, then share read-only.</summary>
    public sealed class Options : IDisposable
    {
        static Options()
        {
            BuildTreeLibrary.Load();
        }

        public OptionsHandle Handle { get; private set; }

        /// <summary>Options holding the library's defaults.</summary>
        public Options()
        {
            OptionsHandle h;
            PseudostreamException.Check(NativeMethods.ps_options_new(out h));
            Handle = h;
        }

        /// <summary>
        /// Sets one option by the library's name (start_unit, startUnit and
        /// start-unit alike) from its string value. A bad key or value throws,
        /// naming both, and changes nothing.
        /// </summary>
        public void Set(string key, string value)
        {
            if (key == null)
                throw new ArgumentNullException("key");
            PseudostreamException.Check(NativeMethods.ps_options_set(Handle, Utf8.ToC(key), Utf8.ToC(value ?? "")));
        }

        /// <summary>Every key the library knows, one a line: "name | alias: what it takes".</summary>
        public static string Describe()
        {
            UIntPtr needed;
            uint st = NativeMethods.ps_options_describe(null, UIntPtr.Zero, out needed);
            if (st != PsStatus.BufferTooSmall)
                PseudostreamException.Check(st);
            var buf = new byte[checked((int)needed.ToUInt64())];
            UIntPtr written;
            PseudostreamException.Check(NativeMethods.ps_options_describe(buf, needed, out written));
            return Utf8.FromBuffer(buf, written);
        }

        public void Dispose()
        {
            Handle.Dispose();
        }
    }

    /// <summary>
    /// One HTTP request and the library's whole answer to it: status, every
    /// response header and the body. One thread at a time.
    /// </summary>
    public sealed class Exchange : IDisposable
    {
        static Exchange()
        {
            BuildTreeLibrary.Load();
        }

        public ExchangeHandle Handle { get; private set; }

        private Exchange(ExchangeHandle handle)
        {
            Handle = handle;
        }

        /// <summary>A request by its method ("GET", "OPTIONS", … as sent) and its raw query string, without '?'.</summary>
        public static Exchange New(string method, string query)
        {
            byte[] m = Encoding.UTF8.GetBytes(method ?? "");
            byte[] q = Encoding.UTF8.GetBytes(query ?? "");
            ExchangeHandle h;
            PseudostreamException.Check(NativeMethods.ps_exchange_new(m, Length(m), q, Length(q), out h));
            return new Exchange(h);
        }

        /// <summary>Hands over one request header; the library keeps those it reads.</summary>
        public void SetHeader(string name, string value)
        {
            byte[] n = Encoding.UTF8.GetBytes(name ?? "");
            byte[] v = Encoding.UTF8.GetBytes(value ?? "");
            PseudostreamException.Check(NativeMethods.ps_exchange_set_header(Handle, n, Length(n), v, Length(v)));
        }

        /// <summary>True when the answer depends on the file (GET, HEAD): open it before Respond.</summary>
        public bool WantsFile
        {
            get
            {
                uint wants;
                PseudostreamException.Check(NativeMethods.ps_exchange_wants_file(Handle, out wants));
                return wants != 0;
            }
        }

        /// <summary>Opens and indexes the file; a file that cannot be served becomes the answer.</summary>
        public void OpenPath(string path)
        {
            if (path == null)
                throw new ArgumentNullException("path");
            PseudostreamException.Check(NativeMethods.ps_exchange_open_path(Handle, Utf8.ToC(path)));
        }

        /// <summary>The host's own lookup failed with <paramref name="errno"/> (ENOENT: 404, EACCES: 403).</summary>
        public void OpenFailed(int errno, string name)
        {
            PseudostreamException.Check(NativeMethods.ps_exchange_open_failed(Handle, errno, Utf8.ToC(name)));
        }

        /// <summary>Decides the answer under <paramref name="options"/>. Call once.</summary>
        public void Respond(Options options)
        {
            if (options == null)
                throw new ArgumentNullException("options");
            PseudostreamException.Check(NativeMethods.ps_exchange_respond(Handle, options.Handle));
        }

        public PsExchangeInfo Info
        {
            get
            {
                PsExchangeInfo info;
                PseudostreamException.Check(NativeMethods.ps_exchange_get_info(Handle, out info));
                return info;
            }
        }

        /// <summary>The answer's headers, in the library's order: write exactly these.</summary>
        public List<KeyValuePair<string, string>> Headers()
        {
            uint count = Info.HeaderCount;
            var headers = new List<KeyValuePair<string, string>>((int)count);
            for (uint i = 0; i < count; i++)
            {
                IntPtr name, value;
                UIntPtr nameLen, valueLen;
                PseudostreamException.Check(NativeMethods.ps_exchange_header(Handle, new UIntPtr(i), out name,
                    out nameLen, out value, out valueLen));
                headers.Add(new KeyValuePair<string, string>(Utf8.FromPointer(name, nameLen),
                    Utf8.FromPointer(value, valueLen)));
            }
            return headers;
        }

        /// <summary>Why the answer is what it is, for the host's log only (it may name paths).</summary>
        public string Detail
        {
            get
            {
                IntPtr p;
                PseudostreamException.Check(NativeMethods.ps_exchange_detail(Handle, out p));
                return Utf8.FromC(p) ?? "";
            }
        }

        /// <summary>
        /// Copies the next body bytes into <paramref name="buf"/> as far as pacing allows at
        /// <paramref name="nowUs"/> (a monotonic clock). Returns a PsFillState: Data with
        /// <paramref name="written"/> bytes, Wait with <paramref name="waitUs"/>, or Done.
        /// </summary>
        public uint Fill(byte[] buf, ulong nowUs, out int written, out ulong waitUs)
        {
            UIntPtr n;
            uint state;
            PseudostreamException.Check(NativeMethods.ps_exchange_fill(Handle, buf, Length(buf), nowUs, out n,
                out waitUs, out state));
            written = checked((int)n.ToUInt64());
            return state;
        }

        public void Dispose()
        {
            Handle.Dispose();
        }

        private static UIntPtr Length(byte[] bytes)
        {
            return new UIntPtr((uint)bytes.Length);
        }
    }
}
