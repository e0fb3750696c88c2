using Treechunk.IO;
using Treechunk.Oci;
using Treechunk.Tests.Support;

namespace Treechunk.Tests.Delta;

/// <summary>
/// zstd patch-from deltas (Oci/ZstdPatch): a delta's digest is named by a manifest, so the
/// native and the managed zstd must make the same bytes from the same old and new tar; applying
/// it gives the new bytes back, and a damaged delta or the wrong old bytes fail instead of
/// giving something else.
/// </summary>
public class DeltaPatchTests
{
    private static byte[] Corpus(int size, int seed)
    {
        var rng = new Random(seed);
        var text = new System.Text.StringBuilder(size + 16);
        while (text.Length < size) text.Append(rng.Next(1_000_000)).Append(rng.Next(7) == 0 ? '\n' : ' ');
        return System.Text.Encoding.ASCII.GetBytes(text.ToString(0, size));
    }

    /// <summary>v1 with edits spread through it, a block moved and some bytes appended.</summary>
    private static byte[] Edited(byte[] old, int seed)
    {
        var rng = new Random(seed);
        var b = old.ToArray();
        for (int i = 0; i < 40; i++) b[rng.Next(b.Length)] = (byte)'#';
        var moved = b.AsSpan(1000, 50_000).ToArray();
        return [.. b.AsSpan(60_000), .. moved, .. b.AsSpan(0, 60_000), .. Corpus(20_000, seed + 1)];
    }

    private static (MappedFile Map, TempDir Dir) Prefix(byte[] old)
    {
        var dir = new TempDir("patch-");
        File.WriteAllBytes(dir["old"], old);
        return (MappedFile.Open(dir["old"]), dir);
    }

    private static byte[] Create(MappedFile prefix, byte[] content, ZstdEncoder encoder, int level = 19)
    {
        using var output = new MemoryStream();
        // A stream that returns short reads, so the frame cannot depend on how input arrives.
        ZstdPatch.Create(prefix, new TrickleStream(content), content.Length, output, level, encoder);
        return output.ToArray();
    }

    private static byte[] Apply(byte[] delta, MappedFile prefix, ZstdEncoder encoder)
    {
        using var s = ZstdPatch.Apply(new MemoryStream(delta), prefix, encoder);
        using var result = new MemoryStream();
        s.CopyTo(result);
        return result.ToArray();
    }

    [Theory]
    [InlineData(3)]
    [InlineData(19)]
    public void Delta_bytes_are_the_same_from_native_and_managed_zstd_and_apply_back(int level)
    {
        Assert.True(Zstd.NativeAvailable, "the bundled native libzstd must load here");
        var old = Corpus(3_000_000, 1);
        var next = Edited(old, 2);
        var (prefix, dir) = Prefix(old);
        using (dir)
        using (prefix)
        {
            var native = Create(prefix, next, ZstdEncoder.Native, level);
            var managed = Create(prefix, next, ZstdEncoder.Managed, level);
            Assert.Equal(Digest.Sha256(native), Digest.Sha256(managed));
            // The delta is a small fraction of the new bytes, and of what plain zstd makes of them.
            using var plain = new MemoryStream();
            using (var z = Zstd.Compress(plain, level)) z.Write(next);
            Assert.True(native.Length * 10 < plain.Length, $"delta {native.Length} bytes, plain zstd {plain.Length}");
            Assert.Equal(next, Apply(native, prefix, ZstdEncoder.Native));
            Assert.Equal(next, Apply(native, prefix, ZstdEncoder.Managed));
        }
    }

    [Fact]
    public void A_damaged_delta_or_the_wrong_old_bytes_fail_instead_of_giving_other_bytes()
    {
        var old = Corpus(500_000, 3);
        var next = Edited(old, 4);
        var (prefix, dir) = Prefix(old);
        var (other, otherDir) = Prefix(Corpus(500_000, 5));
        using (dir)
        using (otherDir)
        using (prefix)
        using (other)
        {
            var delta = Create(prefix, next, ZstdEncoder.Native);
            foreach (var encoder in new[] { ZstdEncoder.Native, ZstdEncoder.Managed })
            {
                var damaged = delta.ToArray();
                damaged[damaged.Length / 2] ^= 0x40;
                Assert.Throws<TreechunkException>(() => Apply(damaged, prefix, encoder));
                Assert.Throws<TreechunkException>(() => Apply(delta, other, encoder));
                Assert.Throws<TreechunkException>(() => Apply(delta[..^10], prefix, encoder));
                Assert.Throws<TreechunkException>(() => Apply([.. delta, 1, 2, 3], prefix, encoder));
            }
        }
    }

    [Fact]
    public void The_window_reaches_back_over_the_whole_prefix()
    {
        Assert.Equal(10, ZstdPatch.WindowLog(0, 0));
        Assert.Equal(21, ZstdPatch.WindowLog(1 << 20, 1 << 20));
        Assert.Equal(22, ZstdPatch.WindowLog(1 << 20, (1 << 20) + 1));
        Assert.Equal(ZstdPatch.MaxWindowLog, ZstdPatch.WindowLog(1L << 40, 1));
    }

    private sealed class TrickleStream(byte[] data) : ReadOnlyStream
    {
        private int _at;
        private readonly Random _rng = new(9);

        public override int Read(Span<byte> buffer)
        {
            int n = Math.Min(Math.Min(buffer.Length, _rng.Next(1, 70_000)), data.Length - _at);
            data.AsSpan(_at, n).CopyTo(buffer);
            _at += n;
            return n;
        }
    }
}
