using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Treechunk.Oci;
using Treechunk.Diff;
using Treechunk.Tests.CommandLine;
using Treechunk.Tests.Support;
using Treechunk.Transports;

namespace Treechunk.Tests.Oci;

/// <summary>
/// oci diff on hand-made layer stacks where later layers override and whiteout what shared
/// layers hold: the file list must be that of the flattened trees, although shared layers'
/// contents are hashed only where the other layers touch them.
/// </summary>
public class ImageDiffTests
{
    private static string Sha(string text) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));

    // Shared base: both images start with it.
    private static readonly Lazy<byte[]> Base = new(() => CraftedImage.PythonTar("""
        add(t, 'etc/a', b'A1')
        add(t, 'etc/b', b'B')
        add(t, 'etc/c', b'C')
        add(t, 'etc/same', b'Q')
        add(t, 'd/f1', b'1')
        add(t, 'd/f2', b'2')
        add(t, 'usr/keep', b'K')
        """));

    // Shared too, and last in both: it re-adds d/f2 after NEW's opaque marker hid d/.
    private static readonly Lazy<byte[]> Top = new(() => CraftedImage.PythonTar("""
        add(t, 'd/f2', b'2b')
        add(t, 'etc/late', b'L')
        """));

    // OLD's own layer: overrides a shared file (etc/a), and another with the very same bytes (etc/b).
    private static readonly Lazy<byte[]> OldOwn = new(() => CraftedImage.PythonTar("""
        add(t, 'etc/a', b'A2')
        add(t, 'etc/b', b'B')
        """));

    // NEW's own layer: whiteouts a shared file, makes d/ opaque with a new file, adds one.
    private static readonly Lazy<byte[]> NewOwn = new(() => CraftedImage.PythonTar("""
        add(t, 'etc/.wh.c', b'')
        add(t, 'd/.wh..wh..opq', b'')
        add(t, 'd/f3', b'3')
        add(t, 'etc/new', b'N')
        """));

    private static Image Open(string dir) => ImageReference.Parse("oci:" + dir).OpenImage();

    private static List<string> Paths(ImageDiffResult r, FileStatus s) =>
        r.Files!.Where(f => f.Status == s).Select(f => f.Path).ToList();

    [Fact]
    public void Overrides_and_whiteouts_in_later_layers_give_the_flattened_trees_difference()
    {
        using var tmp = new TempDir("imgdiff");
        CraftedImage.Write(tmp["old"], Base.Value, OldOwn.Value, Top.Value);
        CraftedImage.Write(tmp["new"], Base.Value, NewOwn.Value, Top.Value);
        using var oldImage = Open(tmp["old"]);
        using var newImage = Open(tmp["new"]);
        Assert.Equal(oldImage.Manifest.Layers[0].Digest, newImage.Manifest.Layers[0].Digest);
        Assert.Equal(oldImage.Manifest.Layers[2].Digest, newImage.Manifest.Layers[2].Digest);

        var r = ImageDiff.Compare(oldImage, newImage);
        // By hand: etc/a is A2 in OLD (its own layer overrides the base) and A1 in NEW; etc/b was
        // overridden in OLD with the same bytes: unchanged. etc/c is whited out in NEW; d/ is
        // opaque in NEW, so d/f1 is gone and d/f3 new, but d/f2 comes back from the shared top
        // layer in both. etc/same, usr/keep and etc/late are the shared layers' alone.
        Assert.Equal(["etc/a"], Paths(r, FileStatus.Modified));
        Assert.Equal(["d/f3", "etc/new"], Paths(r, FileStatus.Added));
        Assert.Equal(["d/f1", "etc/c"], Paths(r, FileStatus.Removed));
        var a = r.Files!.Single(f => f.Path == "etc/a");
        Assert.Equal((Sha("A2"), Sha("A1")), (a.OldDigest, a.NewDigest)); // real digests, also of the shared layer's file
        Assert.Equal((1, 0), (a.OldLayer, a.NewLayer));
        Assert.Equal(Sha("1"), r.Files!.Single(f => f.Path == "d/f1").OldDigest);
        Assert.Equal(0, r.LayersReread); // the first pass hashed every shared path the other layers touch
        Assert.Equal(4, r.LayersRead);   // two shared blobs, each once, and the two own ones

        // Layers: no component annotations, so the own layers pair up by position.
        Assert.Equal([LayerStatus.Reused, LayerStatus.Changed, LayerStatus.Reused], r.NewLayers.Select(l => l.Status));
        Assert.Equal(newImage.Manifest.Layers[1].Size, r.DownloadBytes);
        Assert.Equal(1, r.NewLayers[1].Match);

        // The CLI says the same, in JSON and for people.
        var json = JsonNode.Parse(TreechunkCli.Check("oci", "diff", $"oci:{tmp["old"]}", $"oci:{tmp["new"]}", "--json"))!;
        Assert.Equal(r.DownloadBytes, (long)json["totals"]!["download_bytes"]!);
        Assert.Equal(["d/f1", "d/f3", "etc/a", "etc/c", "etc/new"], json["files"]!["list"]!.AsArray().Select(f => (string)f!["path"]!));
        OciDiffTests.AssertHumanAgrees(TreechunkCli.Check("oci", "diff", $"oci:{tmp["old"]}", $"oci:{tmp["new"]}"), json);
    }

    [Fact]
    public void Shared_layers_in_another_order_are_hashed_where_they_decide_a_path()
    {
        // No layer is the image's own, so nothing is hashed at first: the pair below differs
        // only by the order of two shared layers, which decides etc/z but not etc/same.
        var one = CraftedImage.PythonTar("add(t, 'etc/z', b'Z1')\nadd(t, 'etc/same', b'Q')\nadd(t, 'etc/only1', b'O')");
        var two = CraftedImage.PythonTar("add(t, 'etc/z', b'Z2')\nadd(t, 'etc/same', b'Q')");
        using var tmp = new TempDir("imgdiff");
        CraftedImage.Write(tmp["old"], one, two);
        CraftedImage.Write(tmp["new"], two, one);
        using var oldImage = Open(tmp["old"]);
        using var newImage = Open(tmp["new"]);

        var r = ImageDiff.Compare(oldImage, newImage);
        var z = Assert.Single(r.Files!);
        Assert.Equal(("etc/z", FileStatus.Modified), (z.Path, z.Status));
        Assert.Equal((Sha("Z2"), Sha("Z1")), (z.OldDigest, z.NewDigest));
        Assert.Equal(2, r.LayersReread); // each layer read again for its etc/z (and etc/same, found equal)
        Assert.Equal(0, r.DownloadBytes);
        Assert.All(r.NewLayers, l => Assert.Equal(LayerStatus.Reused, l.Status));
    }

    /// <summary>A stand-in for the zstd:chunked estimator: a fixed share of each layer.</summary>
    private sealed class HalfOfEachLayer : IPartialPullEstimator
    {
        public readonly List<string> Asked = [];
        public PartialPullEstimate Estimate(Image oldImage, Layer newLayer)
        {
            Asked.Add(newLayer.Descriptor.Digest);
            return new PartialPullEstimate(newLayer.Descriptor.Size / 2, "toc");
        }
    }

    [Fact]
    public void The_partial_pull_seam_is_asked_once_per_downloaded_blob_and_summed()
    {
        using var tmp = new TempDir("imgdiff");
        // NEW lists its own layer twice: it is fetched (and estimated) once.
        CraftedImage.Write(tmp["old"], Base.Value, OldOwn.Value);
        CraftedImage.Write(tmp["new"], Base.Value, NewOwn.Value, Top.Value, NewOwn.Value);
        using var oldImage = Open(tmp["old"]);
        using var newImage = Open(tmp["new"]);
        var seam = new HalfOfEachLayer();
        var r = ImageDiff.Compare(oldImage, newImage, new ImageDiffOptions { PartialPull = seam, Files = false });
        var own = newImage.Manifest.Layers[1];
        var top = newImage.Manifest.Layers[2];
        Assert.Equal([own.Digest, top.Digest], seam.Asked);
        Assert.Equal(own.Size + top.Size, r.DownloadBytes);
        Assert.Equal(own.Size / 2 + top.Size / 2, r.PartialPullBytes);
        Assert.Equal("toc", r.NewLayers[1].PartialPullMethod);
        Assert.Equal((0, 0L), (r.NewLayers[3].DownloadBytes, r.NewLayers[3].PartialPullBytes)); // the repeat
        Assert.Null(r.NewLayers[0].PartialPullMethod); // reused: nothing to pull
        // Without an estimator, a partial pull is the whole layer, as for any client today.
        Assert.Equal(r.DownloadBytes, ImageDiff.Compare(oldImage, newImage, new ImageDiffOptions { Files = false }).PartialPullBytes);
    }

    [Fact]
    public void A_hardlink_to_a_shared_layers_file_has_that_files_content()
    {
        var shared = CraftedImage.PythonTar("add(t, 'etc/h1', b'H')\nadd(t, 'etc/other', b'O')");
        var oldOwn = CraftedImage.PythonTar("add(t, 'etc/h2', b'H')\nadd(t, 'etc/h3', b'X')");
        // NEW links both to the shared etc/h1: h2 keeps its bytes, h3 changes from X to H.
        var newOwn = CraftedImage.PythonTar("""
            add(t, 'etc/h2', type=tarfile.LNKTYPE, linkname='etc/h1')
            add(t, 'etc/h3', type=tarfile.LNKTYPE, linkname='etc/h1')
            """);
        using var tmp = new TempDir("imgdiff");
        CraftedImage.Write(tmp["old"], shared, oldOwn);
        CraftedImage.Write(tmp["new"], shared, newOwn);
        using var oldImage = Open(tmp["old"]);
        using var newImage = Open(tmp["new"]);

        var r = ImageDiff.Compare(oldImage, newImage);
        var h3 = Assert.Single(r.Files!);
        Assert.Equal(("etc/h3", FileStatus.Modified, Sha("X"), Sha("H")), (h3.Path, h3.Status, h3.OldDigest, h3.NewDigest));
        Assert.Equal(0, r.LayersReread); // link targets are among the paths the own layers touch
    }
}
