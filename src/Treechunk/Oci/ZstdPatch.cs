using Treechunk.IO;
using Treechunk.Posix;
using ZstdSharp.Unsafe;
using M = ZstdSharp.Unsafe.Methods;

namespace Treechunk.Oci;

/// <summary>
/// zstd "patch-from" deltas: a new tar compressed as one zstd frame with the old tar referenced
/// as a prefix (ZSTD_CCtx_refPrefix), so every stretch the two share becomes a back-reference
/// into the old bytes; applying it decompresses with the same prefix (ZSTD_DCtx_refPrefix). This
/// is what `zstd --patch-from` does, through the same library calls, in the pinned zstd 1.5.7:
/// the bundled native libzstd or, where it cannot load, the managed port, which give the same
/// bytes (ZstdPatchTests), so a delta's digest does not depend on the machine that made it.
///
/// Memory: the prefix must be addressable whole while a frame is made or applied, so callers
/// pass a <see cref="MappedFile"/> (the old tar in a temp file, paged in by the kernel, not on
/// the GC heap). The window covers prefix + new tar, capped at 2^<see cref="MaxWindowLog"/>;
/// the frame records the new tar's size, so the decoder's own buffer is at most that size.
/// The encoder's match tables grow with the window (roughly 8 bytes per window byte at level
/// 19 with long-distance matching); <see cref="MaxPrefix"/> bounds both.
/// </summary>
public static unsafe class ZstdPatch
{
    /// <summary>The level deltas are made at: they are made once and fetched by every client, so spending CPU on size pays.</summary>
    public const int DefaultLevel = 19;

    /// <summary>1 GiB: the most a window (prefix + new tar) spans; larger layers get no delta.</summary>
    public const int MaxWindowLog = 30;

    /// <summary>The largest old tar used as a prefix.</summary>
    public const long MaxPrefix = 1L << 29;

    /// <summary>The smallest window that reaches from the end of the new tar back to the start of the prefix.</summary>
    public static int WindowLog(long prefix, long content)
    {
        long span = Math.Max(1, prefix + content);
        int log = 64 - System.Numerics.BitOperations.LeadingZeroCount((ulong)(span - 1));
        return Math.Clamp(log, 10, MaxWindowLog);
    }

    /// <summary>
    /// Writes the delta that turns <paramref name="prefix"/> into the <paramref name="length"/>
    /// bytes of <paramref name="content"/> to <paramref name="output"/>. Every parameter that
    /// decides the bytes is set explicitly (level, window, long-distance matching, single
    /// thread, checksum, content size), so the same inputs give the same delta anywhere.
    /// </summary>
    public static void Create(MappedFile prefix, Stream content, long length, Stream output, int level = DefaultLevel, ZstdEncoder? encoder = null)
    {
        if (prefix.Length > MaxPrefix) throw new TreechunkException($"a delta's old tar may be at most {MaxPrefix >> 20} MiB (it is {prefix.Length >> 20} MiB)");
        int windowLog = WindowLog(prefix.Length, length);
        using var cctx = new CompressContext(Zstd.UseNative(encoder));
        cctx.Set(ZSTD_cParameter.ZSTD_c_compressionLevel, level);
        cctx.Set(ZSTD_cParameter.ZSTD_c_windowLog, windowLog);
        cctx.Set(ZSTD_cParameter.ZSTD_c_enableLongDistanceMatching, 1);
        cctx.Set(ZSTD_cParameter.ZSTD_c_nbWorkers, 0);
        cctx.Set(ZSTD_cParameter.ZSTD_c_checksumFlag, 1);
        cctx.Set(ZSTD_cParameter.ZSTD_c_contentSizeFlag, 1);
        cctx.Pledge((ulong)length);
        cctx.RefPrefix(prefix.Pointer, (nuint)prefix.Length);

        var input = new byte[1 << 17];
        var outBuf = new byte[1 << 17];
        long read = 0;
        fixed (byte* inP = input)
        fixed (byte* outP = outBuf)
        {
            while (true)
            {
                int n = read < length ? content.Read(input, 0, (int)Math.Min(input.Length, length - read)) : 0;
                if (n == 0 && read < length) throw new TreechunkException($"the new tar ended after {read} of {length} bytes");
                read += n;
                bool last = read == length;
                var inB = new NativeZstd.Buffer { Ptr = (nint)inP, Size = (nuint)n, Pos = 0 };
                while (true)
                {
                    var outB = new NativeZstd.Buffer { Ptr = (nint)outP, Size = (nuint)outBuf.Length, Pos = 0 };
                    nuint left = cctx.Compress(&outB, &inB, last ? 2 : 0);
                    output.Write(outBuf, 0, (int)outB.Pos);
                    if (last ? left == 0 : inB.Pos == inB.Size) break;
                }
                if (last) break;
            }
        }
    }

    /// <summary>
    /// A read stream of the bytes <paramref name="delta"/> (a frame made by <see cref="Create"/>)
    /// rebuilds from <paramref name="prefix"/>, which must stay open while it is read. A delta
    /// that is damaged or was made from another prefix fails with a <see cref="TreechunkException"/>
    /// (the frame's checksum catches what the decoder does not).
    /// </summary>
    public static Stream Apply(Stream delta, MappedFile prefix, ZstdEncoder? encoder = null) => new ApplyStream(delta, prefix, Zstd.UseNative(encoder));

    private sealed class ApplyStream : ReadOnlyStream
    {
        private readonly Stream _delta;
        private readonly DecompressContext _dctx;
        private readonly byte[] _input = new byte[1 << 17];
        private readonly System.Runtime.InteropServices.GCHandle _pin;
        private NativeZstd.Buffer _in;
        private bool _frameDone, _deltaDone;

        public ApplyStream(Stream delta, MappedFile prefix, bool native)
        {
            _delta = delta;
            _dctx = new DecompressContext(native);
            _dctx.Set(ZSTD_dParameter.ZSTD_d_windowLogMax, MaxWindowLog);
            _dctx.RefPrefix(prefix.Pointer, (nuint)prefix.Length);
            _pin = System.Runtime.InteropServices.GCHandle.Alloc(_input, System.Runtime.InteropServices.GCHandleType.Pinned);
            _in = new NativeZstd.Buffer { Ptr = _pin.AddrOfPinnedObject(), Size = 0, Pos = 0 };
        }

        public override int Read(Span<byte> buffer)
        {
            if (buffer.Length == 0) return 0;
            while (true)
            {
                if (_frameDone)
                {
                    // One frame only: bytes after it mean the delta is not what it claims.
                    if (_in.Pos < _in.Size || (!_deltaDone && Fill() > 0)) throw new TreechunkException("the delta has bytes after its zstd frame");
                    return 0;
                }
                if (_in.Pos == _in.Size && !_deltaDone && Fill() == 0) _deltaDone = true;
                fixed (byte* outP = buffer)
                {
                    var outB = new NativeZstd.Buffer { Ptr = (nint)outP, Size = (nuint)buffer.Length, Pos = 0 };
                    var inB = _in;
                    nuint hint = _dctx.Decompress(&outB, &inB);
                    _in = inB;
                    if (hint == 0) _frameDone = true;
                    if (outB.Pos > 0) return (int)outB.Pos;
                    if (_deltaDone && !_frameDone && _in.Pos == _in.Size) throw new TreechunkException("the delta ends before its zstd frame does");
                }
            }
        }

        private int Fill()
        {
            int n = _delta.Read(_input, 0, _input.Length);
            _in.Size = (nuint)n;
            _in.Pos = 0;
            if (n == 0) _deltaDone = true;
            return n;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _dctx.Dispose();
                _delta.Dispose();
            }
            if (_pin.IsAllocated) _pin.Free();
            base.Dispose(disposing);
        }
    }

    /// <summary>Throws for a zstd error code, named by the implementation that returned it.</summary>
    private static void Check(bool native, nuint code, string what)
    {
        if (native ? NativeZstd.IsError(code) == 0 : !M.ZSTD_isError(code)) return;
        var name = native ? System.Runtime.InteropServices.Marshal.PtrToStringAnsi(NativeZstd.GetErrorName(code)) ?? "error" : M.ZSTD_getErrorName(code);
        throw new TreechunkException($"zstd {what}: {name}", ExitCodes.VerificationFailed);
    }

    /// <summary>A ZSTD_CCtx of either implementation, with the few calls patch-from needs.</summary>
    private sealed class CompressContext : IDisposable
    {
        private readonly nint _native;
        private readonly ZSTD_CCtx_s* _managed;

        public CompressContext(bool native)
        {
            if (native) _native = NativeZstd.CreateCCtx();
            else _managed = M.ZSTD_createCCtx();
            if (_native == 0 && _managed == null) throw new OutOfMemoryException("ZSTD_createCCtx");
        }

        private void Check(nuint code, string what) => ZstdPatch.Check(_native != 0, code, what);

        public void Set(ZSTD_cParameter p, int value) =>
            Check(_native != 0 ? NativeZstd.CCtxSetParameter(_native, (int)p, value) : M.ZSTD_CCtx_setParameter(_managed, p, value), $"parameter {p}={value}");

        public void Pledge(ulong size) =>
            Check(_native != 0 ? NativeZstd.CCtxSetPledgedSrcSize(_native, size) : M.ZSTD_CCtx_setPledgedSrcSize(_managed, size), "pledged size");

        public void RefPrefix(byte* prefix, nuint size) =>
            Check(_native != 0 ? NativeZstd.CCtxRefPrefix(_native, (nint)prefix, size) : M.ZSTD_CCtx_refPrefix(_managed, prefix, size), "prefix");

        public nuint Compress(NativeZstd.Buffer* output, NativeZstd.Buffer* input, int end)
        {
            nuint r = _native != 0
                ? NativeZstd.CompressStream2(_native, output, input, end)
                : M.ZSTD_compressStream2(_managed, (ZSTD_outBuffer_s*)output, (ZSTD_inBuffer_s*)input, (ZSTD_EndDirective)end);
            Check(r, "compression");
            return r;
        }

        public void Dispose()
        {
            if (_native != 0) NativeZstd.FreeCCtx(_native);
            else M.ZSTD_freeCCtx(_managed);
        }
    }

    /// <summary>A ZSTD_DCtx of either implementation.</summary>
    private sealed class DecompressContext : IDisposable
    {
        private readonly nint _native;
        private readonly ZSTD_DCtx_s* _managed;
        private bool _disposed;

        public DecompressContext(bool native)
        {
            if (native) _native = NativeZstd.CreateDCtx();
            else _managed = M.ZSTD_createDCtx();
            if (_native == 0 && _managed == null) throw new OutOfMemoryException("ZSTD_createDCtx");
        }

        private void Check(nuint code, string what) => ZstdPatch.Check(_native != 0, code, what);

        public void Set(ZSTD_dParameter p, int value) =>
            Check(_native != 0 ? NativeZstd.DCtxSetParameter(_native, (int)p, value) : M.ZSTD_DCtx_setParameter(_managed, p, value), $"parameter {p}={value}");

        public void RefPrefix(byte* prefix, nuint size) =>
            Check(_native != 0 ? NativeZstd.DCtxRefPrefix(_native, (nint)prefix, size) : M.ZSTD_DCtx_refPrefix(_managed, prefix, size), "prefix");

        public nuint Decompress(NativeZstd.Buffer* output, NativeZstd.Buffer* input)
        {
            nuint r = _native != 0
                ? NativeZstd.DecompressStream(_native, output, input)
                : M.ZSTD_decompressStream(_managed, (ZSTD_outBuffer_s*)output, (ZSTD_inBuffer_s*)input);
            Check(r, "delta");
            return r;
        }

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            if (_native != 0) NativeZstd.FreeDCtx(_native);
            else M.ZSTD_freeDCtx(_managed);
        }
    }
}
