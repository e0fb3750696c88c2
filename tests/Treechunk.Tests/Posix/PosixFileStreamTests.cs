using FsCheck;
using FsCheck.Fluent;
using Treechunk.Posix;
using Treechunk.Tests.Support;

namespace Treechunk.Tests.Posix;

public class PosixFileStreamTests
{
    /// <summary>Data with long zero runs, written sparse in arbitrary write sizes, reads back exactly.</summary>
    [FsCheck.Xunit.Property(MaxTest = 60)]
    public Property Sparse_writes_read_back_exactly(PositiveInt seed, NonEmptyArray<PositiveInt> writeSizes)
    {
        var rng = new Random(seed.Get);
        var data = new byte[rng.Next(1, 200_000)];
        for (int i = 0; i < data.Length;)
        {
            int run = rng.Next(1, 20_000);
            bool zeros = rng.Next(2) == 0;
            for (int j = 0; j < run && i < data.Length; j++, i++) data[i] = zeros ? (byte)0 : (byte)rng.Next(256);
        }
        using var tmp = new TempDir("sparse-unit");
        var path = tmp["f"];
        using (var s = PosixFileStream.CreateNew(path, 0x1A4, sparse: true))
        {
            int at = 0, k = 0;
            while (at < data.Length)
            {
                int n = Math.Min(data.Length - at, writeSizes.Get[k++ % writeSizes.Get.Length].Get % 70_000 + 1);
                s.Write(data, at, n);
                at += n;
            }
        }
        return File.ReadAllBytes(path).AsSpan().SequenceEqual(data).ToProperty();
    }

    [Fact]
    public void Zero_blocks_become_holes_and_a_trailing_hole_keeps_the_size()
    {
        using var tmp = new TempDir("sparse-holes");
        var data = new byte[4 << 20];
        data[0] = 1;
        using (var s = PosixFileStream.CreateNew(tmp["f"], 0x1A4, sparse: true)) s.Write(data);
        var st = Proc.Check("stat", "-c", "%s %b %B", tmp["f"]).Split(' ').Select(long.Parse).ToArray();
        Assert.Equal(4 << 20, st[0]);
        Assert.True(st[1] * st[2] <= 64 << 10, $"{st[1] * st[2]} bytes on disk");
        using (var s = PosixFileStream.CreateNew(tmp["g"], 0x1A4)) s.Write(data);
        var dense = Proc.Check("stat", "-c", "%b %B", tmp["g"]).Split(' ').Select(long.Parse).ToArray();
        Assert.True(dense[0] * dense[1] >= 4 << 20, "without sparse every block is written");
        Assert.Throws<IOException>(() => PosixFileStream.CreateNew(tmp["f"], 0x1A4)); // O_EXCL
    }
}
