namespace Treechunk.Oci;

/// <summary>Which zstd encoder produces a stream; both give the same bytes.</summary>
public enum ZstdEncoder { Native, Managed }

/// <summary>
/// The zstd encoder. A zstd frame's bytes depend on the encoder's version, and a layer's digest
/// on those bytes, so the version is pinned to 1.5.7 everywhere: the native libzstd that the
/// ZstdNet package bundles for each platform (about 1.6x faster), and where it cannot load, ZstdSharp,
/// a line-for-line C# port of the same release. Tests hold the two to identical output. A system
/// libzstd is never used: Debian 12's 1.5.4 frames the same input differently.
/// </summary>
public static class Zstd
{
    /// <summary>ZSTD_versionNumber() of the pinned release (1.5.7).</summary>
    public const uint PinnedVersion = 10507;

    /// <summary>Names the encoder's output format, for caches keyed by the bytes it will produce.</summary>
    public static string EncoderId => "zstd-1.5.7";

    private static readonly Lazy<bool> Native = new(ProbeNative);

    /// <summary>Whether the bundled native encoder loaded and is the pinned release.</summary>
    public static bool NativeAvailable => Native.Value;

    /// <summary>A compressing write stream over <paramref name="inner"/>, which it leaves open.</summary>
    /// <param name="workers">zstd's own worker threads: 0 (the default, single-threaded framing) or
    /// any count of 1 or more, which all frame alike but differently from 0.</param>
    public static Stream Compress(Stream inner, int level, int workers = 0, ZstdEncoder? encoder = null)
    {
        var useNative = UseNative(encoder);
        if (useNative)
        {
            var parameters = new Dictionary<ZstdNet.ZSTD_cParameter, int>();
            if (workers > 0) parameters[ZstdNet.ZSTD_cParameter.ZSTD_c_nbWorkers] = workers;
            return new ZstdNet.CompressionStream(new IO.NonClosingWriteStream(inner), new ZstdNet.CompressionOptions(null, parameters, level));
        }
        var managed = new ZstdSharp.CompressionStream(inner, level, leaveOpen: true);
        if (workers > 0) managed.SetParameter(ZstdSharp.Unsafe.ZSTD_cParameter.ZSTD_c_nbWorkers, workers);
        return managed;
    }

    /// <summary>Whether to use the native encoder: as asked, else whenever it loaded.</summary>
    internal static bool UseNative(ZstdEncoder? encoder) => encoder switch
    {
        ZstdEncoder.Native when !NativeAvailable => throw new InvalidOperationException("the native zstd encoder is not available"),
        ZstdEncoder.Native => true,
        ZstdEncoder.Managed => false,
        _ => NativeAvailable,
    };

    private static bool ProbeNative()
    {
        try
        {
            return Posix.NativeZstd.VersionNumber() == PinnedVersion;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            return false;
        }
    }
}

/// <summary>
/// Compresses whole buffers into one zstd frame each, reusing one context: the frames of
/// zstd:chunked, where the same bytes at the same level must give the same frame wherever they
/// sit in a layer. Native and managed give the same bytes (ZstdEncoderTests).
/// </summary>
public sealed class ZstdFrameCompressor : IDisposable
{
    private readonly ZstdNet.Compressor? _native;
    private readonly ZstdSharp.Compressor? _managed;
    private byte[] _out = [];

    public ZstdFrameCompressor(int level, ZstdEncoder? encoder = null)
    {
        var useNative = Zstd.UseNative(encoder);
        if (useNative) _native = new ZstdNet.Compressor(new ZstdNet.CompressionOptions(level));
        else _managed = new ZstdSharp.Compressor(level);
    }

    /// <summary>One frame holding <paramref name="data"/>; valid until the next call.</summary>
    public ReadOnlySpan<byte> Compress(ReadOnlySpan<byte> data)
    {
        int bound = ZstdNet.Compressor.GetCompressBound(data.Length);
        if (_out.Length < bound) _out = new byte[Math.Max(bound, 1 << 16)];
        int n = _native != null ? _native.Wrap(data, _out) : _managed!.Wrap(data, _out);
        return _out.AsSpan(0, n);
    }

    public void Dispose()
    {
        _native?.Dispose();
        _managed?.Dispose();
    }
}
