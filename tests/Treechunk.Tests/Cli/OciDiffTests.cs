using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Treechunk.Posix;
using Treechunk.Tests.Support;

namespace Treechunk.Tests.CommandLine;

/// <summary>
/// Two small treechunk-built images, v1 and v2 = v1 updated (built with --previous v1, so the
/// untouched components keep byte-identical layers): alpha and gamma unchanged, beta's file
/// changed and one of its files removed, delta gone, epsilon new.
/// </summary>
public sealed class DiffPairFixture : IDisposable
{
    private readonly TempDir _tmp = new("diff");
    public string V1 => $"oci:{_tmp["img"]}:v1";
    public string V2 => $"oci:{_tmp["img"]}:v2";
    public string Layout => _tmp["img"];
    public string this[string relative] => _tmp[relative];

    public DiffPairFixture()
    {
        Tree(_tmp["v1"], update: false);
        Tree(_tmp["v2"], update: true);
        TreechunkCli.Check("compose", "build-chunked-oci", "--rootfs", _tmp["v1"], "--output", V1, "--max-layers", "8");
        TreechunkCli.Check("compose", "build-chunked-oci", "--rootfs", _tmp["v2"], "--output", V2, "--max-layers", "8", "--previous", V1);
    }

    private static byte[] Bytes(int seed, int n)
    {
        var b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }

    private static void File(string root, string component, string rel, byte[] data)
    {
        var full = Path.Join(root, rel);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        System.IO.File.WriteAllBytes(full, data);
        LibC.SetXattr(full, "user.component", Encoding.UTF8.GetBytes(component));
    }

    private static void Tree(string root, bool update)
    {
        File(root, "alpha", "opt/alpha/a.bin", Bytes(1, 20_000));
        File(root, "gamma", "opt/gamma/g.bin", Bytes(3, 40_000));
        if (!update)
        {
            File(root, "beta", "opt/beta/b.bin", Bytes(2, 30_000));
            File(root, "beta", "opt/beta/gone.txt", "bye\n"u8.ToArray());
            File(root, "delta", "opt/delta/d.bin", Bytes(4, 25_000));
        }
        else
        {
            File(root, "beta", "opt/beta/b.bin", [.. Bytes(2, 30_000), .. "changed"u8.ToArray()]);
            File(root, "epsilon", "opt/epsilon/e.bin", Bytes(5, 15_000));
        }
    }

    public void Dispose() => _tmp.Dispose();
}

public class OciDiffTests(DiffPairFixture fx) : IClassFixture<DiffPairFixture>
{
    private static JsonArray LayersOf(string reference) => JsonNode.Parse(TreechunkCli.Check("oci", "layers", reference, "--json"))!.AsArray();

    private static List<string> Names(JsonNode? array, string field = "name") => array!.AsArray().Select(n => (string)n![field]!).Order(StringComparer.Ordinal).ToList();

    private static List<string> Paths(JsonNode diff, string status) =>
        diff["files"]!["list"]!.AsArray().Where(f => (string)f!["status"]! == status).Select(f => (string)f!["path"]!).ToList();

    /// <summary>The tar inside a layer blob of the layout, counted by decompressing it here.</summary>
    private long TarSize(string digest)
    {
        using var blob = System.IO.File.OpenRead(Path.Join(fx.Layout, "blobs/sha256", digest[7..]));
        using var gz = new GZipStream(blob, CompressionMode.Decompress);
        long n = 0;
        var buf = new byte[65536];
        for (int r; (r = gz.Read(buf)) > 0;) n += r;
        return n;
    }

    [Fact]
    public void Synthetic_pair_diff_equals_a_count_by_hand()
    {
        var v1 = LayersOf(fx.V1);
        var v2 = LayersOf(fx.V2);
        var v1Digests = v1.Select(l => (string)l!["digest"]!).ToHashSet();
        string LayerOf(JsonArray layers, string component) =>
            (string)layers.Single(l => l!["components"]!.AsArray().Any(c => (string)c! == component))!["digest"]!;
        // The by-hand count: alpha's and gamma's layers are the same blobs (--previous kept them),
        // beta's layer changed, epsilon is new; download = NEW's blobs OLD lacks.
        Assert.Equal(LayerOf(v1, "alpha"), LayerOf(v2, "alpha"));
        Assert.Equal(LayerOf(v1, "gamma"), LayerOf(v2, "gamma"));
        Assert.NotEqual(LayerOf(v1, "beta"), LayerOf(v2, "beta"));
        var fetched = v2.Where(l => !v1Digests.Contains((string)l!["digest"]!)).ToList();
        long download = fetched.Sum(l => (long)l!["size"]!);
        int reused = v2.Count - fetched.Count;

        var diff = JsonNode.Parse(TreechunkCli.Check("oci", "diff", fx.V1, fx.V2, "--json"))!;
        var totals = diff["totals"]!;
        Assert.Equal(download, (long)totals["download_bytes"]!);
        Assert.Equal(download, (long)totals["partial_pull_bytes"]!); // no zstd:chunked layers: whole layers
        Assert.Equal(reused, (int)totals["reused"]!["layers"]!);
        Assert.Equal(v2.Count - reused, (int)totals["changed"]!["layers"]! + (int)totals["added"]!["layers"]!);
        Assert.Equal(v1.Count - reused, (int)totals["changed"]!["layers"]! + (int)totals["removed"]!["layers"]!);
        Assert.Equal(v2.Where(l => v1Digests.Contains((string)l!["digest"]!)).Sum(l => (long)l!["size"]!), (long)totals["reused"]!["size"]!);
        // beta's layer takes the place of beta's old layer; epsilon's has no predecessor unless it joined one.
        var newLayers = diff["layers"]!["new"]!.AsArray();
        var betaNew = newLayers.Single(l => (string)l!["digest"]! == LayerOf(v2, "beta"))!;
        Assert.Equal("changed", (string)betaNew["status"]!);
        Assert.Equal(v1.IndexOf(v1.Single(l => (string)l!["digest"]! == LayerOf(v1, "beta"))), (int)betaNew["match"]!);
        Assert.Equal("reused", (string)newLayers.Single(l => (string)l!["digest"]! == LayerOf(v2, "alpha"))!["status"]!);
        // Uncompressed sizes are the tars' (decompressed here by hand).
        foreach (var l in newLayers)
            Assert.Equal(TarSize((string)l!["digest"]!), (long)l["uncompressed_size"]!);
        Assert.Equal(newLayers.Sum(l => (long)l!["uncompressed_size"]!), (long)diff["new"]!["uncompressed_size"]!);

        // Components: by their annotations. beta's files/bytes annotation changed. Where the
        // planner gives the directories a component of their own (unowned:opt: 5 in both,
        // same count and bytes), its set changed too (opt/delta went, opt/epsilon came),
        // which only the files show; planners that put each directory with the first
        // component below it have no such component. alpha and gamma are in reused layers.
        Assert.Equal(["epsilon"], Names(diff["components"]!["added"]));
        Assert.Equal(["delta"], Names(diff["components"]!["removed"]));
        var changed = diff["components"]!["changed"]!.AsArray();
        var beta = changed.Single(c => (string)c!["name"]! == "beta")!;
        Assert.Equal("stats", (string)beta["evidence"]!);
        Assert.Equal((2, 1), ((int)beta["old_files"]!, (int)beta["new_files"]!));
        foreach (var other in changed.Where(c => (string)c!["name"]! != "beta"))
        {
            Assert.Equal("unowned:opt", (string)other!["name"]!);
            Assert.Equal("files", (string)other["evidence"]!);
            Assert.Equal((5, 5), ((int)other["old_files"]!, (int)other["new_files"]!));
        }

        // Files: exactly what the two trees differ in.
        Assert.Equal(["opt/beta/b.bin"], Paths(diff, "modified"));
        Assert.Equal(["opt/epsilon", "opt/epsilon/e.bin"], Paths(diff, "added"));
        Assert.Equal(["opt/beta/gone.txt", "opt/delta", "opt/delta/d.bin"], Paths(diff, "removed"));
        var b = diff["files"]!["list"]!.AsArray().Single(f => (string)f!["path"]! == "opt/beta/b.bin")!;
        Assert.Equal(30_007, (long)b["new_size"]!);
        Assert.Equal(30_000, (long)b["old_size"]!);

        // The human summary says the same numbers.
        var human = TreechunkCli.Check("oci", "diff", fx.V1, fx.V2);
        AssertHumanAgrees(human, diff);
        Assert.Contains("  ~ opt/beta/b.bin", human);
        Assert.Contains("  + opt/epsilon/e.bin", human);
        Assert.Contains("  - opt/delta/d.bin", human);
    }

    /// <summary>The human output's totals lines and layer rows against the JSON.</summary>
    internal static void AssertHumanAgrees(string human, JsonNode diff)
    {
        var totals = diff["totals"]!;
        Assert.Contains($"Download (layer level): {(long)totals["download_bytes"]!} bytes", human);
        Assert.Contains($"Download (partial pull): {(long)totals["partial_pull_bytes"]!} bytes", human);
        var files = diff["files"]!;
        Assert.Contains($"Files: {(int)files["added"]!} added, {(int)files["removed"]!} removed, {(int)files["modified"]!} modified", human);
        foreach (var kind in new[] { "changed", "added", "removed" })
        {
            var names = Names(diff["components"]![kind]);
            Assert.Contains($"Components {kind}: {names.Count}{(names.Count > 0 ? "  " + string.Join(", ", diff["components"]![kind]!.AsArray().Select(c => (string)c!["name"]!)) : "")}", human);
        }
        // Each layer row: index (or "-" for OLD's removed ones), status, short digest.
        var rows = human.Split('\n').Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(c => c.Length >= 3 && c[2].StartsWith("sha256:") && (c[0] == "-" || c[0].All(char.IsAsciiDigit))).ToList();
        var newLayers = diff["layers"]!["new"]!.AsArray();
        var removed = diff["layers"]!["old"]!.AsArray().Where(l => (string)l!["status"]! == "removed").ToList();
        Assert.Equal(newLayers.Count + removed.Count, rows.Count);
        for (int i = 0; i < newLayers.Count; i++)
        {
            Assert.Equal(i.ToString(), rows[i][0]);
            Assert.Equal((string)newLayers[i]!["status"]!, rows[i][1]);
            Assert.Equal(((string)newLayers[i]!["digest"]!)[..19], rows[i][2]);
        }
        for (int i = 0; i < removed.Count; i++)
            Assert.Equal(["-", "removed", ((string)removed[i]!["digest"]!)[..19]], rows[newLayers.Count + i][..3]);
        // The status totals table: name, count.
        var totalRows = human.Split('\n').Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(c => c.Length >= 4).Where(c => c[0] is "reused" or "changed" or "added" or "removed").ToList();
        foreach (var kind in new[] { "reused", "changed", "added", "removed" })
            Assert.Contains(totalRows, c => c[0] == kind && c[1] == ((int)totals[kind]!["layers"]!).ToString());
    }

    [Fact]
    public void Html_page_renders_in_headless_chromium_with_the_json_numbers()
    {
        var chromium = Tools.Require("chromium");
        var page = fx["page.html"];
        var diff = JsonNode.Parse(TreechunkCli.Check("oci", "diff", fx.V1, fx.V2, "--json", "--html", page))!;
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(page)!, ".tmp-*")); // written under a temp name, then renamed
        var html = System.IO.File.ReadAllText(page);
        Assert.DoesNotMatch("(src|href)=\"(https?:)?//", html); // self-contained
        Assert.DoesNotContain("<script", html);

        // The DOM as the browser built it.
        var dom = Proc.Check(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", "file://" + page);
        long Value(string id)
        {
            var m = Regex.Match(dom, $"id=\"{id}\" data-value=\"(\\d+)\"");
            Assert.True(m.Success, $"no #{id} in the rendered page");
            return long.Parse(m.Groups[1].Value);
        }
        var totals = diff["totals"]!;
        Assert.Equal((long)totals["download_bytes"]!, Value("download-bytes"));
        Assert.Equal((long)totals["partial_pull_bytes"]!, Value("partial-pull-bytes"));
        Assert.Equal((long)diff["new"]!["size"]!, Value("new-size"));
        Assert.Equal((long)diff["old"]!["size"]!, Value("old-size"));
        foreach (var kind in new[] { "reused", "changed", "added", "removed" })
        {
            Assert.Equal((long)totals[kind]!["layers"]!, Value($"{kind}-layers"));
            Assert.Equal((long)totals[kind]!["size"]!, Value($"{kind}-size"));
            Assert.Equal((long)totals[kind]!["uncompressed_size"]!, Value($"{kind}-uncompressed-size"));
        }
        foreach (var kind in new[] { "added", "removed", "modified" })
            Assert.Equal((long)diff["files"]![kind]!, Value($"files-{kind}"));
        foreach (var kind in new[] { "added", "removed", "changed" })
            Assert.Equal(diff["components"]![kind]!.AsArray().Count, Value($"components-{kind}"));
        // One bar segment per layer, coloured by what the update does with it, sized as the JSON says.
        var segments = Regex.Matches(dom, "<div class=\"layer (\\w+)\"[^>]*data-index=\"(\\d+)\" data-status=\"(\\w+)\" data-digest=\"([^\"]+)\" data-size=\"(\\d+)\"")
            .Select(m => (Class: m.Groups[1].Value, Status: m.Groups[3].Value, Digest: m.Groups[4].Value, Size: long.Parse(m.Groups[5].Value))).ToList();
        var oldLayers = diff["layers"]!["old"]!.AsArray();
        var newLayers = diff["layers"]!["new"]!.AsArray();
        Assert.Equal(oldLayers.Count + newLayers.Count, segments.Count);
        var newSegments = segments.Skip(oldLayers.Count).ToList();
        for (int i = 0; i < newLayers.Count; i++)
        {
            Assert.Equal((string)newLayers[i]!["digest"]!, newSegments[i].Digest);
            Assert.Equal((long)newLayers[i]!["size"]!, newSegments[i].Size);
            Assert.Equal((string)newLayers[i]!["status"]! == "reused" ? "reused" : "downloaded", newSegments[i].Class);
        }
        Assert.Equal(newSegments.Where(s => s.Class == "downloaded").Sum(s => s.Size), (long)totals["download_bytes"]!);
        // The changed component is named on the page.
        Assert.Matches("class=\"component\" data-status=\"changed\">beta<", dom);
        Assert.Matches("data-status=\"changed\"[^>]*>[^<]*beta[^<]*</div>", dom); // on its layer's bar

        // And it draws: a non-empty PNG holding both bar colours, not one flat colour.
        var shot = fx["page.png"];
        Proc.Check(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", $"--screenshot={shot}", "--window-size=1200,900", "file://" + page);
        var pixels = Png.Decode(System.IO.File.ReadAllBytes(shot));
        Assert.True(pixels.Distinct().Count() > 2, "the screenshot is a single colour");
        Assert.Contains(0x3a8f4aU, pixels); // reused
        Assert.Contains(0xd9480fU, pixels); // downloaded
    }

    /// <summary>The diff without the references as given (which name the transports).</summary>
    private static string Normalised(JsonNode diff)
    {
        diff["old"]!.AsObject().Remove("reference");
        diff["new"]!.AsObject().Remove("reference");
        return diff.ToJsonString();
    }

    [Fact]
    public void Any_two_transports_give_the_same_diff_and_a_registry_sends_each_layer_once()
    {
        using var tmp = new TempDir("diff-transports");
        var expected = Normalised(JsonNode.Parse(TreechunkCli.Check("oci", "diff", fx.V1, fx.V2, "--json"))!);
        var archive = $"oci-archive:{tmp["v1.tar"]}";
        var chunks = $"dir:{tmp["v2-chunks"]}";
        TreechunkCli.Check("oci", "copy", fx.V1, archive);
        TreechunkCli.Check("oci", "copy", fx.V2, chunks);
        Assert.Equal(expected, Normalised(JsonNode.Parse(TreechunkCli.Check("oci", "diff", archive, chunks, "--json"))!));

        using var registry = Support.Registry.RegistryServer.StartAnonymous();
        var env = Registry.RegistryClientTests.Env(tmp);
        var remote = $"docker://{registry.Host}/os/img:v2";
        Registry.RegistryClientTests.Json(env, "oci", "push", "--insecure", fx.V2, remote);
        var layers = LayersOf(fx.V2).Select(l => (string)l!["digest"]!).Distinct().ToList();

        registry.ClearRequests();
        var r = TreechunkCli.RunWithEnv(env, "oci", "diff", "--insecure", archive, remote, "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(expected, Normalised(JsonNode.Parse(r.Stdout)!));
        Assert.All(layers, d => Assert.Equal(1, registry.CountBlobGets(d)));

        // --no-files asks the registry for manifests and the config only.
        registry.ClearRequests();
        Registry.RegistryClientTests.Json(env, "oci", "diff", "--insecure", "--no-files", archive, remote);
        Assert.All(layers, d => Assert.Equal(0, registry.CountBlobGets(d)));
    }

    [Fact]
    public void A_corrupt_layer_is_named_and_fails_verification()
    {
        using var tmp = new TempDir("diff-corrupt");
        Proc.Check("cp", "-a", fx.Layout, tmp["img"]);
        var beta = (string)LayersOf(fx.V2).Single(l => l!["components"]!.AsArray().Any(c => (string)c! == "beta"))!["digest"]!;
        var blob = Path.Join(tmp["img"], "blobs/sha256", beta[7..]);
        var bytes = System.IO.File.ReadAllBytes(blob);
        bytes[bytes.Length / 2] ^= 0x40;
        System.IO.File.WriteAllBytes(blob, bytes);
        Assert.Contains(beta, TreechunkCli.Fails(1, "oci", "diff", $"oci:{tmp["img"]}:v1", $"oci:{tmp["img"]}:v2"));
        // Without files no blob is read, so the layer-level numbers still come.
        TreechunkCli.Check("oci", "diff", $"oci:{tmp["img"]}:v1", $"oci:{tmp["img"]}:v2", "--no-files");
    }

    [Fact]
    public void Identical_images_reuse_every_layer_and_change_nothing()
    {
        var diff = JsonNode.Parse(TreechunkCli.Check("oci", "diff", fx.V2, fx.V2, "--json"))!;
        Assert.Equal(0, (long)diff["totals"]!["download_bytes"]!);
        Assert.Equal(LayersOf(fx.V2).Count, (int)diff["totals"]!["reused"]!["layers"]!);
        Assert.Empty(diff["files"]!["list"]!.AsArray());
        Assert.Empty(diff["components"]!["changed"]!.AsArray());
    }

    [Fact]
    public void No_files_reads_no_layer_and_still_counts_layers_and_components()
    {
        // Layer blobs of a copy are deleted: only manifests and configs may be read.
        var copy = fx["nofiles"];
        Proc.Check("cp", "-a", fx.Layout, copy);
        var full = JsonNode.Parse(TreechunkCli.Check("oci", "diff", fx.V1, fx.V2, "--json"))!;
        foreach (var l in LayersOf(fx.V1).Concat(LayersOf(fx.V2)))
            System.IO.File.Delete(Path.Join(copy, "blobs/sha256", ((string)l!["digest"]!)[7..]));
        var diff = JsonNode.Parse(TreechunkCli.Check("oci", "diff", $"oci:{copy}:v1", $"oci:{copy}:v2", "--json", "--no-files"))!;
        Assert.Null(diff["files"]);
        Assert.Equal((long)full["totals"]!["download_bytes"]!, (long)diff["totals"]!["download_bytes"]!);
        // Without files only the annotations speak: beta's stats changed; the directories' set
        // change (same count and bytes) needs the files to be seen.
        Assert.Equal(["beta"], Names(diff["components"]!["changed"]));
        Assert.Equal(Names(full["components"]!["added"]), Names(diff["components"]!["added"]));
        Assert.Equal(Names(full["components"]!["removed"]), Names(diff["components"]!["removed"]));
        Assert.Null(diff["totals"]!["changed"]!["uncompressed_size"]);
        Assert.Contains("Files: not compared", TreechunkCli.Check("oci", "diff", $"oci:{copy}:v1", $"oci:{copy}:v2", "--no-files"));
    }

    [Fact]
    public void Bad_references_give_one_clear_line_and_a_non_zero_exit()
    {
        var missing = fx["nowhere"];
        Assert.Contains("nowhere", TreechunkCli.Fails(null, "oci", "diff", $"oci:{missing}", fx.V2));
        Assert.Contains("nowhere", TreechunkCli.Fails(null, "oci", "diff", fx.V1, $"oci:{missing}"));
        Assert.Contains("v9", TreechunkCli.Fails(null, "oci", "diff", fx.V1, $"oci:{fx.Layout}:v9"));
        TreechunkCli.Fails(2, "oci", "diff", fx.V1, "docker://"); // no repository
        TreechunkCli.Fails(2, "oci", "diff", fx.V1);              // NEW missing
        Assert.Contains("not linux/s390x", TreechunkCli.Fails(2, "oci", "diff", "--platform", "linux/s390x", fx.V1, fx.V2));
        // A page that cannot be written is an environment error, and nothing half-written is left.
        Assert.Contains("cannot write", TreechunkCli.Fails(3, "oci", "diff", fx.V1, fx.V2, "--html", fx["no-such-dir/page.html"]));
    }

    [Fact]
    public void Help_documents_the_json_fields_and_gives_an_example()
    {
        var help = TreechunkCli.Check("oci", "diff", "--help");
        foreach (var field in new[] { "download_bytes", "partial_pull_bytes", "uncompressed_size", "evidence", "old_digest", "Examples:", "--html", "--no-files", "--platform" })
            Assert.Contains(field, help);
    }
}

/// <summary>Just enough of PNG to read a browser's screenshot: 8-bit RGB or RGBA, not interlaced, to 0xRRGGBB pixels.</summary>
internal static class Png
{
    public static List<uint> Decode(byte[] png)
    {
        Assert.True(png.Length > 8 && png.AsSpan(0, 8).SequenceEqual(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }), "not a PNG");
        int width = 0, height = 0, channels = 0;
        using var idat = new MemoryStream();
        for (int pos = 8; pos < png.Length;)
        {
            int len = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(pos));
            var type = Encoding.ASCII.GetString(png, pos + 4, 4);
            var data = png.AsSpan(pos + 8, len);
            if (type == "IHDR")
            {
                width = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(data);
                height = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(data[4..]);
                Assert.Equal(8, data[8]);
                channels = data[9] switch { 2 => 3, 6 => 4, var c => throw new Xunit.Sdk.XunitException($"PNG colour type {c}") };
                Assert.Equal(0, data[12]);
            }
            else if (type == "IDAT") idat.Write(data);
            pos += 12 + len;
        }
        idat.Position = 0;
        using var z = new ZLibStream(idat, CompressionMode.Decompress);
        int stride = width * channels;
        var prev = new byte[stride];
        var row = new byte[stride];
        var pixels = new List<uint>(width * height);
        for (int y = 0; y < height; y++)
        {
            int filter = z.ReadByte();
            z.ReadExactly(row);
            for (int i = 0; i < stride; i++)
            {
                int a = i >= channels ? row[i - channels] : 0, b = prev[i], c = i >= channels ? prev[i - channels] : 0;
                row[i] = (byte)(row[i] + filter switch
                {
                    0 => 0,
                    1 => a,
                    2 => b,
                    3 => (a + b) / 2,
                    4 => Paeth(a, b, c),
                    _ => throw new Xunit.Sdk.XunitException($"PNG filter {filter}"),
                });
            }
            for (int x = 0; x < width; x++)
                pixels.Add((uint)(row[x * channels] << 16 | row[x * channels + 1] << 8 | row[x * channels + 2]));
            (prev, row) = (row, prev);
        }
        return pixels;
    }

    private static int Paeth(int a, int b, int c)
    {
        int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }
}
