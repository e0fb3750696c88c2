using System.Text;
using System.Text.Json.Nodes;
using Treechunk.Tests.CommandLine;
using Treechunk.Tests.Registry;
using Treechunk.Tests.Support;
using Treechunk.Tests.Support.Registry;
using Xunit.Abstractions;

namespace Treechunk.Tests.Delta;

/// <summary>
/// The delta commands on a small tree: every layer records its compression; only layers whose
/// blob can be made again from their tar get deltas (gzip and zstd:chunked are refused, with the
/// reason); compose --previous --deltas stores them beside the new image, oci push carries them
/// to a registry, a pull uses them and oci diff counts what the pull fetches; bad input is one
/// line and exit 2.
/// </summary>
public class DeltaCliTests(ITestOutputHelper output)
{
    /// <summary>Four components of text files (one layer each), and a binary one.</summary>
    private static void CreateV1(string root)
    {
        var rng = new Random(5);
        for (int d = 0; d < 4; d++)
            for (int f = 0; f < 8; f++)
            {
                var text = new StringBuilder();
                while (text.Length < 60_000) text.Append(rng.Next(1_000_000)).Append(rng.Next(6) == 0 ? '\n' : ' ');
                var path = Path.Join(root, $"usr/share/pkg{d}/file{f}.txt");
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                File.WriteAllText(path, text.ToString());
                Treechunk.Posix.LibC.SetXattr(path, "user.component", Encoding.UTF8.GetBytes($"pkg{d}"));
            }
    }

    /// <summary>v1 with a line changed in two files of pkg1 and one of pkg2 (a security rebuild's kind of change).</summary>
    private static void MakeV2(string v1, string v2)
    {
        Proc.Check("cp", "-a", v1, v2);
        foreach (var f in new[] { "pkg1/file2.txt", "pkg1/file5.txt", "pkg2/file0.txt" })
        {
            var path = Path.Join(v2, "usr/share", f);
            var text = File.ReadAllText(path);
            File.WriteAllText(path, text[..20_000] + "patched " + text[20_000..]);
        }
    }

    private static (TempDir Tmp, string Layout) Pair(string name, params string[] build)
    {
        var tmp = new TempDir(name);
        CreateV1(tmp["v1"]);
        MakeV2(tmp["v1"], tmp["v2"]);
        ZstdChunkedTests.Build(tmp["v1"], $"oci:{tmp["img"]}:v1", build);
        return (tmp, tmp["img"]);
    }

    [Theory]
    [InlineData("zstd", "zstd;level=3;workers=0;encoder=zstd-1.5.7", null)]
    [InlineData("gzip", "gzip;level=6;workers=0;encoder=dotnet-zlib-", "gzip bytes come from the .NET runtime's zlib")]
    [InlineData("zstd:chunked", "zstd:chunked;level=3;workers=0;encoder=zstd-1.5.7", "zstd:chunked layers are framed file by file")]
    public void Layers_record_their_compression_and_only_reproducible_ones_get_deltas(string compression, string annotation, string? refused)
    {
        var (tmp, layout) = Pair("delta-kind-", "--compression", compression);
        using (tmp)
        {
            ZstdChunkedTests.Build(tmp["v2"], $"oci:{layout}:v2", "--compression", compression, "--previous", $"oci:{layout}:v1");
            Assert.All(ZstdChunkedTests.Manifest(layout, "v2")["layers"]!.AsArray(),
                l => Assert.StartsWith(annotation, (string)l!["annotations"]!["org.treechunk.compression"]!));
            var created = JsonNode.Parse(TreechunkCli.Check("oci", "delta", "create", "--json", $"oci:{layout}:v1", $"oci:{layout}:v2"))!;
            output.WriteLine(created.ToJsonString());
            var skipped = created["skipped"]!.AsArray();
            if (refused == null)
            {
                Assert.Empty(skipped);
                Assert.Equal(2, created["deltas"]!.AsArray().Count);
                // A changed line makes a delta of a few hundred bytes out of a layer of a hundred KB.
                Assert.All(created["deltas"]!.AsArray(), d => Assert.True((long)d!["delta_size"]! * 20 < (long)d["layer_size"]!, d.ToJsonString()));
            }
            else
            {
                Assert.Empty(created["deltas"]!.AsArray());
                Assert.Equal(2, skipped.Count);
                Assert.All(skipped, s => Assert.Contains(refused, (string)s!["reason"]!));
            }
        }
    }

    [Fact]
    public void Compose_with_deltas_stores_them_beside_the_image_push_carries_them_and_pull_and_diff_use_them()
    {
        var (tmp, layout) = Pair("delta-compose-", "--compression", "zstd");
        using (tmp)
        {
            var built = ZstdChunkedTests.Build(tmp["v2"], $"oci:{layout}:v2", "--compression", "zstd", "--previous", $"oci:{layout}:v1", "--deltas",
                "--metrics-file", tmp["metrics.json"]);
            var deltas = built["deltas"]!;
            output.WriteLine(deltas.ToJsonString());
            var v2 = (string)built["manifest_digest"]!;
            Assert.Equal(v2, (string)deltas["new"]!);
            Assert.Equal(2, deltas["deltas"]!.AsArray().Count);
            Assert.Equal($"tag sha256-{v2[7..]}.delta", (string)deltas["stored_at"]!);
            Assert.Equal((string)deltas["artifact"]!, (string)JsonNode.Parse(File.ReadAllText(tmp["metrics.json"]))!["deltas"]!["artifact"]!);
            // The layout still has one default image per tag: the artifact's tag is not an image.
            var artifact = ZstdChunkedTests.Manifest(layout, $"sha256-{v2[7..]}.delta");
            Assert.Equal("application/vnd.treechunk.delta.v1+json", (string)artifact["artifactType"]!);
            Assert.Equal(v2, (string)artifact["subject"]!["digest"]!);

            var env = RegistryClientTests.Env(tmp);
            using var registry = RegistryServer.StartAnonymous();
            RegistryClientTests.Json(env, "oci", "push", "--insecure", $"oci:{layout}:v1", $"docker://{registry.Host}/os/img:v1");
            RegistryClientTests.Json(env, "oci", "push", "--insecure", $"oci:{layout}:v2", $"docker://{registry.Host}/os/img:v2");
            RegistryClientTests.Json(env, "oci", "pull", "--insecure", $"docker://{registry.Host}/os/img:v1", $"oci:{tmp["local"]}:v1");
            var pull = RegistryClientTests.Json(env, "oci", "pull", "--insecure", $"docker://{registry.Host}/os/img:v2", $"oci:{tmp["local"]}:v2");
            Assert.Equal(2, pull["delta_layers"]!.AsArray().Count);
            TreechunkCli.Check(env, "oci", "verify-layers", $"oci:{tmp["local"]}:v2");

            // oci copy from the registry into a layout uses the deltas as oci pull does, and
            // counts them per layer and per method in its metrics file.
            RegistryClientTests.Json(env, "oci", "copy", "--insecure", $"docker://{registry.Host}/os/img:v1", $"oci:{tmp["copied"]}:v1");
            var copy = RegistryClientTests.Json(env, "oci", "copy", "--insecure", "--metrics-file", tmp["copy-metrics.json"],
                $"docker://{registry.Host}/os/img:v2", $"oci:{tmp["copied"]}:v2");
            Assert.Equal(pull["delta_layers"]!.AsArray().Select(d => (string)d!["digest"]!).Order(),
                         copy["delta_layers"]!.AsArray().Select(d => (string)d!["digest"]!).Order());
            var copyMetrics = JsonNode.Parse(File.ReadAllText(tmp["copy-metrics.json"]))!;
            var deltaTransfers = copyMetrics["transfers"]!.AsArray().Where(t => (string)t!["method"]! == "delta").ToList();
            Assert.Equal(2, deltaTransfers.Count);
            Assert.Equal(deltaTransfers.Sum(t => (long)t!["bytes_fetched"]!), (long)copyMetrics["bytes_fetched_by_method"]!["delta"]!);
            Assert.All(deltaTransfers, t => Assert.True((long)t!["bytes_fetched"]! * 4 < (long)t["size"]!, t!.ToJsonString()));
            TreechunkCli.Check(env, "oci", "verify-layers", $"oci:{tmp["copied"]}:v2");

            // Copying the image from one layout to another carries its delta artifact along, so
            // the copy can be pushed, or pulled from, with its deltas.
            var carried = RegistryClientTests.Json(env, "oci", "copy", $"oci:{layout}:v2", $"oci:{tmp["carried"]}:v2");
            Assert.Contains($"sha256-{v2[7..]}.delta", carried["signature_tags"]!.AsArray().Select(t => (string)t!));
            Assert.Equal((string)deltas["artifact"]!, ZstdChunkedTests.Digest(tmp["carried"], $"sha256-{v2[7..]}.delta"));
            var again = JsonNode.Parse(TreechunkCli.Check("oci", "diff", "--json", "--no-files", $"oci:{layout}:v1", $"oci:{tmp["carried"]}:v2"))!;
            Assert.NotNull(again["totals"]!["delta_pull_bytes"]);

            // oci diff counts, layer by layer, what that pull fetched.
            var diff = JsonNode.Parse(TreechunkCli.Check(env, "oci", "diff", "--json", "--no-files", "--insecure",
                $"docker://{registry.Host}/os/img:v1", $"docker://{registry.Host}/os/img:v2"))!;
            var fetched = pull["delta_layers"]!.AsArray().ToDictionary(d => (string)d!["digest"]!, d => (long)d!["bytes_fetched"]!);
            foreach (var l in diff["layers"]!["new"]!.AsArray().Where(l => (string)l!["status"]! != "reused"))
            {
                Assert.Equal("delta", (string)l!["delta_pull_method"]!);
                Assert.Equal(fetched[(string)l["digest"]!], (long)l["delta_pull_bytes"]!);
            }
            Assert.True((long)diff["totals"]!["delta_pull_bytes"]! * 10 < (long)diff["totals"]!["download_bytes"]!, diff["totals"]!.ToJsonString());
            var noDeltas = JsonNode.Parse(TreechunkCli.Check("oci", "diff", "--json", "--no-files", "--no-deltas", $"oci:{layout}:v1", $"oci:{layout}:v2"))!;
            Assert.Null(noDeltas["totals"]!["delta_pull_bytes"]);
        }
    }

    [Fact]
    public void Bad_input_is_one_line_and_exit_2()
    {
        var (tmp, layout) = Pair("delta-bad-", "--compression", "zstd");
        using (tmp)
        {
            Assert.Contains("does-not-exist", TreechunkCli.Fails(2, "oci", "delta", "create", $"oci:{tmp["does-not-exist"]}", $"oci:{layout}:v1"));
            Assert.Contains("--push", TreechunkCli.Fails(2, "oci", "delta", "create", $"oci:{layout}:v1", "docker://127.0.0.1:9/os/img:v2"));
            Assert.Contains("delta level", TreechunkCli.Fails(2, "oci", "delta", "create", "--level", "30", $"oci:{layout}:v1", $"oci:{layout}:v1"));
            Assert.Contains("dir:", TreechunkCli.Fails(2, "oci", "delta", "create", "--output", $"dir:{tmp["chunks"]}", $"oci:{layout}:v1", $"oci:{layout}:v1"));
            Assert.Contains("--deltas needs --previous", TreechunkCli.Fails(2, "compose", "build-chunked-oci", "--rootfs", tmp["v2"], "--output", $"oci:{layout}:v2", "--deltas"));
            Assert.Contains("--delta-level", TreechunkCli.Fails(2, "compose", "build-chunked-oci", "--rootfs", tmp["v2"], "--output", $"oci:{layout}:v2",
                "--previous", $"oci:{layout}:v1", "--deltas", "--delta-level", "0"));
            // Nothing was written by the refused build.
            Assert.DoesNotContain("v2", File.ReadAllText(Path.Join(layout, "index.json")));
            // The same image twice: nothing to do, no error.
            var same = JsonNode.Parse(TreechunkCli.Check("oci", "delta", "create", "--json", $"oci:{layout}:v1", $"oci:{layout}:v1"))!;
            Assert.Empty(same["deltas"]!.AsArray());
        }
    }
}
