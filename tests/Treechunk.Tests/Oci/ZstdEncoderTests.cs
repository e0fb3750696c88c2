using FsCheck;
using FsCheck.Fluent;
using Treechunk.Oci;

namespace Treechunk.Tests.Oci;

/// <summary>
/// zstd layers must hash the same on every machine: the native encoder (ZstdNet's bundled
/// libzstd) and the managed fallback (ZstdSharp) are both zstd 1.5.7, and must agree byte for byte.
/// </summary>
public class ZstdEncoderTests
{
    private static byte[] Encode(byte[] data, int level, ZstdEncoder encoder, int workers = 0, int writeSize = 8192)
    {
        using var sink = new MemoryStream();
        using (var z = Zstd.Compress(sink, level, workers, encoder))
            for (var i = 0; i < data.Length; i += writeSize)
                z.Write(data, i, Math.Min(writeSize, data.Length - i));
        Assert.True(sink.CanWrite, "the compressor must leave its output stream open");
        return sink.ToArray();
    }

    private static byte[] Decode(byte[] compressed)
    {
        using var d = LayerCompression.Decompress(new MemoryStream(compressed), MediaTypes.LayerZstd);
        using var plain = new MemoryStream();
        d.CopyTo(plain);
        return plain.ToArray();
    }

    /// <summary>Compressible but not trivial: text-like runs with pseudo-random words.</summary>
    private static byte[] Corpus(int size, int seed)
    {
        var rng = new Random(seed);
        var words = Enumerable.Range(0, 300).Select(_ => new string(Enumerable.Range(0, rng.Next(2, 12)).Select(_ => (char)('a' + rng.Next(26))).ToArray())).ToArray();
        var text = new System.Text.StringBuilder(size + 16);
        while (text.Length < size) text.Append(words[rng.Next(words.Length)]).Append(rng.Next(8) == 0 ? '\n' : ' ');
        var bytes = System.Text.Encoding.ASCII.GetBytes(text.ToString(0, size));
        for (var i = 0; i < size / 50; i++) bytes[rng.Next(size)] = (byte)rng.Next(256);   // some noise
        return bytes;
    }

    [Fact]
    public void The_native_encoder_loads_here_and_is_the_pinned_version()
    {
        // On the machines we ship for (linux-x64 and friends) the fast path must be taken; a
        // silent fall back to the managed encoder would halve zstd build speed.
        Assert.True(Zstd.NativeAvailable, "the bundled native libzstd did not load");
        Assert.Equal(Zstd.PinnedVersion, ZstdSharp.Unsafe.Methods.ZSTD_versionNumber());
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(9)]
    [InlineData(19)]
    public void Native_and_managed_give_identical_bytes(int level)
    {
        var data = Corpus(3 << 20, level);   // several 128 KiB blocks, past the level-1 window
        var native = Encode(data, level, ZstdEncoder.Native);
        var managed = Encode(data, level, ZstdEncoder.Managed);
        Assert.Equal(Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(managed)),
                     Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(native)));
        Assert.Equal(data, Decode(native));
    }

    [Fact]
    public void Native_and_managed_agree_with_workers_too()
    {
        var data = Corpus(2 << 20, 7);
        var native = Encode(data, 3, ZstdEncoder.Native, workers: 2);
        Assert.Equal(native, Encode(data, 3, ZstdEncoder.Managed, workers: 2));
        Assert.Equal(native, Encode(data, 3, ZstdEncoder.Native, workers: 1));   // any count >= 1 frames alike
        Assert.Equal(data, Decode(native));
    }

    [FsCheck.Xunit.Property(MaxTest = 60)]
    public bool Output_does_not_depend_on_encoder_or_write_sizes(NonNegativeInt seed, PositiveInt size, PositiveInt writeSize, PositiveInt levelSeed)
    {
        var data = Corpus(size.Get % 400_000, seed.Get);
        var level = levelSeed.Get % 6 + 1;
        var reference = Encode(data, level, ZstdEncoder.Managed, writeSize: 1 << 16);
        return reference.SequenceEqual(Encode(data, level, ZstdEncoder.Native, writeSize: writeSize.Get % 200_000 + 1))
            && Decode(reference).SequenceEqual(data);
    }

    [Fact]
    public void Empty_input_gives_a_valid_identical_frame()
    {
        var native = Encode([], 3, ZstdEncoder.Native);
        Assert.Equal(Encode([], 3, ZstdEncoder.Managed), native);
        Assert.Empty(Decode(native));
    }

    /// <summary>zstd:chunked frames are whole-buffer compressions: the same on both encoders, and each one alone a valid frame.</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(19)]
    public void Native_and_managed_frame_compressors_give_identical_frames(int level)
    {
        using var native = new ZstdFrameCompressor(level, ZstdEncoder.Native);
        using var managed = new ZstdFrameCompressor(level, ZstdEncoder.Managed);
        foreach (var size in new[] { 0, 1, 511, 4096, 100_000, 256 << 10 })
        {
            var data = Corpus(size, size + level);
            var a = native.Compress(data).ToArray();
            var b = managed.Compress(data).ToArray();
            Assert.Equal(a, b);
            Assert.Equal(data, Decode(a));
            // Again on the same context: a reused context frames alike.
            Assert.Equal(a, native.Compress(data).ToArray());
        }
    }
}
