using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using Treechunk.Posix;
using Treechunk.Tests.Support;

namespace Treechunk.Tests.CommandLine;

/// <summary>
/// Each build option is compared with a build without it (or with another value), so a test
/// fails when the option is ignored. Layers and configs are read through skopeo where it can
/// say what we need, so the assertions are on what a peer reports.
/// </summary>
public class BuildOptionTests
{
    private static string Build(string rootfs, string layout, params string[] extra) =>
        (string)JsonNode.Parse(TreechunkCli.Check(["compose", "build-chunked-oci", "--rootfs", rootfs, "--output", layout, .. extra, "--json"]))!["manifest_digest"]!;

    /// <summary>Layer digests and sizes of the manifest, and diff_ids of the config, as skopeo reads them.</summary>
    private static (List<string> Digests, long Bytes, List<string> DiffIds) Skopeo(string reference)
    {
        var skopeo = Tools.Require("skopeo");
        var manifest = JsonNode.Parse(Proc.Check(skopeo, "inspect", "--raw", reference))!;
        var config = JsonNode.Parse(Proc.Check(skopeo, "inspect", "--config", reference))!;
        var layers = manifest["layers"]!.AsArray();
        return (layers.Select(l => (string)l!["digest"]!).ToList(), layers.Sum(l => (long)l!["size"]!),
                config["rootfs"]!["diff_ids"]!.AsArray().Select(d => (string)d!).ToList());
    }

    /// <summary>Every entry of every layer, with its PAX extended attributes (layers uncompressed or gzip).</summary>
    private static List<(string Name, IReadOnlyDictionary<string, string> Pax)> Entries(string layout)
    {
        var index = JsonNode.Parse(File.ReadAllText(Path.Join(layout, "index.json")))!;
        string Blob(string digest) => Path.Join(layout, "blobs/sha256", digest[7..]);
        var manifest = JsonNode.Parse(File.ReadAllText(Blob((string)index["manifests"]![0]!["digest"]!)))!;
        var result = new List<(string, IReadOnlyDictionary<string, string>)>();
        foreach (var layer in manifest["layers"]!.AsArray())
        {
            using var file = File.OpenRead(Blob((string)layer!["digest"]!));
            using Stream tar = ((string)layer["mediaType"]!).EndsWith("gzip", StringComparison.Ordinal) ? new GZipStream(file, CompressionMode.Decompress) : file;
            using var reader = new TarReader(tar);
            while (reader.GetNextEntry() is { } e)
                result.Add((e.Name, e is PaxTarEntry p ? p.ExtendedAttributes : new Dictionary<string, string>()));
        }
        return result;
    }

    [Fact]
    public void Parallel_chunks_0_and_1_frame_zstd_differently_but_hold_the_same_content()
    {
        using var tmp = new TempDir("opt-pchunks");
        SyntheticTree.Create(tmp["rootfs"]);
        // zstd's workers split the input into jobs of several MiB: below one job the frames are the
        // same, so the tree needs a file larger than that for the framing to show.
        var rng = new Random(5);
        var words = Enumerable.Range(0, 5000).Select(_ => new string('a', 1 + rng.Next(8)).Select(c => (char)(c + rng.Next(10))).ToArray()).Select(w => new string(w)).ToArray();
        using (var big = new StreamWriter(tmp["rootfs/usr/share/big.txt"]))
            for (int i = 0; i < 3_000_000; i++) { big.Write(words[rng.Next(words.Length)]); big.Write(i % 12 == 0 ? '\n' : ' '); }
        var zero = Build(tmp["rootfs"], $"oci:{tmp["z0"]}", "--compression", "zstd", "--parallel-chunks", "0");
        var one = Build(tmp["rootfs"], $"oci:{tmp["z1"]}", "--compression", "zstd", "--parallel-chunks", "1");
        Assert.NotEqual(zero, one);
        var (d0, _, ids0) = Skopeo($"oci:{tmp["z0"]}:latest");
        var (d1, _, ids1) = Skopeo($"oci:{tmp["z1"]}:latest");
        Assert.NotEqual(d0, d1);
        Assert.Equal(ids0, ids1);
        Assert.Equal(zero, Build(tmp["rootfs"], $"oci:{tmp["z0again"]}", "--compression", "zstd")); // 0 is the default
        TreechunkCli.Check("oci", "verify-layers", $"oci:{tmp["z0"]}");
        TreechunkCli.Check("oci", "verify-layers", $"oci:{tmp["z1"]}");
    }

    [Fact]
    public void Compression_level_changes_the_bytes_not_the_content()
    {
        using var tmp = new TempDir("opt-level");
        SyntheticTree.Create(tmp["rootfs"]);
        // Text compresses, so the level shows in the size.
        File.WriteAllText(tmp["rootfs/usr/share/words.txt"], string.Join('\n', Enumerable.Range(0, 40_000).Select(i => $"word {i} of {i * 7 % 1000} in the list")));
        foreach (var (algo, low, high) in new[] { ("gzip", "1", "9"), ("zstd", "1", "19") })
        {
            Build(tmp["rootfs"], $"oci:{tmp[algo + low]}", "--compression", algo, "--compression-level", low);
            Build(tmp["rootfs"], $"oci:{tmp[algo + high]}", "--compression", algo, "--compression-level", high);
            var fast = Skopeo($"oci:{tmp[algo + low]}:latest");
            var small = Skopeo($"oci:{tmp[algo + high]}:latest");
            Assert.NotEqual(fast.Digests, small.Digests);
            Assert.Equal(fast.DiffIds, small.DiffIds);
            Assert.True(small.Bytes < fast.Bytes, $"{algo} level {high} ({small.Bytes} B) should be smaller than level {low} ({fast.Bytes} B)");
        }
    }

    [Fact]
    public void Fixed_cuts_shift_when_a_file_is_added_and_content_based_cuts_do_not()
    {
        using var tmp = new TempDir("opt-algo");
        var rng = new Random(7);
        for (int i = 0; i < 120; i++)
        {
            var bytes = new byte[4_000 + rng.Next(12_000)];
            rng.NextBytes(bytes);
            Directory.CreateDirectory(tmp[$"rootfs/data/d{i / 10:00}"]);
            File.WriteAllBytes(tmp[$"rootfs/data/d{i / 10:00}/f{i:000}.bin"], bytes);
        }
        int Shared(string algo)
        {
            var before = Build(tmp["rootfs"], $"oci:{tmp[algo + "-a"]}", "--chunk-algorithm", algo, "--chunk-size", "64K");
            File.WriteAllBytes(tmp["rootfs/data/d00/a-new.bin"], new byte[9_000]);
            try
            {
                Build(tmp["rootfs"], $"oci:{tmp[algo + "-b"]}", "--chunk-algorithm", algo, "--chunk-size", "64K");
            }
            finally { File.Delete(tmp["rootfs/data/d00/a-new.bin"]); }
            var a = Skopeo($"oci:{tmp[algo + "-a"]}:latest").DiffIds;
            var b = Skopeo($"oci:{tmp[algo + "-b"]}:latest").DiffIds;
            Assert.True(a.Count >= 10, $"{algo}: expected many layers, got {a.Count}");
            return a.Intersect(b).Count();
        }
        var contentBased = Shared("content-based");
        var fixedCuts = Shared("fixed");
        var layers = Skopeo($"oci:{tmp["content-based-a"]}:latest").DiffIds.Count;
        Assert.True(contentBased >= layers - 3, $"content-based kept {contentBased} of {layers} layers");
        Assert.True(fixedCuts < contentBased / 2, $"fixed kept {fixedCuts} layers, content-based {contentBased}");
        Assert.NotEqual(Skopeo($"oci:{tmp["fixed-a"]}:latest").DiffIds, Skopeo($"oci:{tmp["content-based-a"]}:latest").DiffIds);
    }

    [Fact]
    public void Oci_tag_names_the_image_and_beats_the_references_tag()
    {
        using var tmp = new TempDir("opt-tag");
        SyntheticTree.Create(tmp["rootfs"]);
        string Tags(string layout) => string.Join(",", JsonNode.Parse(File.ReadAllText(Path.Join(layout, "index.json")))!["manifests"]!.AsArray()
            .Select(m => (string)m!["annotations"]!["org.opencontainers.image.ref.name"]!).Order(StringComparer.Ordinal));
        var digest = Build(tmp["rootfs"], $"oci:{tmp["plain"]}");
        Assert.Equal("latest", Tags(tmp["plain"]));
        Assert.Equal(digest, Build(tmp["rootfs"], $"oci:{tmp["tagged"]}", "--oci-tag", "v7"));
        Assert.Equal("v7", Tags(tmp["tagged"]));
        Build(tmp["rootfs"], $"oci:{tmp["both"]}:from-ref", "--oci-tag", "from-flag");
        Assert.Equal("from-flag", Tags(tmp["both"]));
        var skopeoDigest = JsonNode.Parse(Proc.Check(Tools.Require("skopeo"), "inspect", $"oci:{tmp["tagged"]}:v7"))!["Digest"];
        Assert.Equal(digest, (string)skopeoDigest!);
    }

    [Fact]
    public void Keep_selinux_keeps_security_selinux_which_is_dropped_by_default()
    {
        using var tmp = new TempDir("opt-selinux");
        SyntheticTree.Create(tmp["rootfs"]);
        var file = tmp["rootfs/etc/app.conf"];
        // Set as root without an SELinux policy loaded, as image builders do (the kernel stores it as an opaque xattr).
        LibC.SetXattr(file, "security.selinux", Encoding.ASCII.GetBytes("system_u:object_r:etc_t:s0\0"));
        Build(tmp["rootfs"], $"oci:{tmp["dropped"]}", "--compression", "none");
        Build(tmp["rootfs"], $"oci:{tmp["kept"]}", "--compression", "none", "--keep-selinux");

        IReadOnlyDictionary<string, string> PaxOf(string layout, string name) => Entries(layout).Single(e => e.Name == name).Pax;
        Assert.False(PaxOf(tmp["dropped"], "etc/app.conf").ContainsKey("SCHILY.xattr.security.selinux"));
        var kept = PaxOf(tmp["kept"], "etc/app.conf");
        Assert.True(kept.ContainsKey("SCHILY.xattr.security.selinux"), string.Join(",", kept.Keys));
        Assert.StartsWith("system_u:object_r:etc_t:s0", kept["SCHILY.xattr.security.selinux"]);
        // Other xattrs are kept either way.
        Assert.True(PaxOf(tmp["dropped"], "usr/bin/tool").ContainsKey("SCHILY.xattr.user.note"));
    }

    [Fact]
    public void Verbose_tells_the_phases_on_stderr_and_stdout_stays_the_result()
    {
        using var tmp = new TempDir("opt-verbose");
        SyntheticTree.Create(tmp["rootfs"]);
        var quiet = TreechunkCli.Run("compose", "build-chunked-oci", "--rootfs", tmp["rootfs"], "--output", $"oci:{tmp["q"]}", "--json");
        var verbose = TreechunkCli.Run("compose", "build-chunked-oci", "--rootfs", tmp["rootfs"], "--output", $"oci:{tmp["v"]}", "--json", "--verbose");
        Assert.Equal(0, quiet.ExitCode);
        Assert.Equal(0, verbose.ExitCode);
        foreach (var phase in new[] { "Planning layers", "Writing layers", "Writing manifest" })
        {
            Assert.Contains(phase, verbose.Stderr);
            Assert.DoesNotContain(phase, quiet.Stderr);
        }
        Assert.Matches("writing [0-9]+ layers", verbose.Stderr);
        Assert.Equal(JsonNode.Parse(quiet.Stdout)!["manifest_digest"]!.ToString(), JsonNode.Parse(verbose.Stdout)!["manifest_digest"]!.ToString());
    }
}

[CollectionDefinition("console", DisableParallelization = true)]
public sealed class ConsoleCollection;

/// <summary>
/// The error contract of Run.Guarded, in process (an internal error cannot be provoked from
/// outside on purpose): one line and a meaningful exit code, the stack trace only with --debug.
/// </summary>
[Collection("console")]
public class ErrorContractTests
{
    private static (int Exit, string Stderr) Guarded(string[] args, Func<int> body)
    {
        var root = new System.CommandLine.RootCommand();
        foreach (var o in Treechunk.Cli.Commands.GlobalOptions.All) root.Options.Add(o);
        var parse = root.Parse(args);
        var saved = Console.Error;
        var captured = new StringWriter();
        Console.SetError(captured);
        try { return (Treechunk.Cli.Commands.Run.Guarded(parse, body), captured.ToString()); }
        finally { Console.SetError(saved); }
    }

    [Fact]
    public void An_internal_error_is_one_line_and_debug_adds_the_stack_trace()
    {
        static int Bug() => throw new InvalidOperationException("the planner lost a component");
        var (exit, stderr) = Guarded([], Bug);
        Assert.Equal(70, exit);
        Assert.Equal("treechunk: error: internal error: InvalidOperationException: the planner lost a component (please report it; --debug shows details)", stderr.TrimEnd());

        var (debugExit, debugErr) = Guarded(["--debug"], Bug);
        Assert.Equal(70, debugExit);
        Assert.StartsWith("treechunk: error: internal error: InvalidOperationException", debugErr);
        Assert.Contains("   at ", debugErr);
        Assert.Contains(nameof(An_internal_error_is_one_line_and_debug_adds_the_stack_trace), debugErr);
    }

    [Fact]
    public void A_user_error_keeps_its_exit_code_and_shows_a_trace_only_with_debug()
    {
        static int Bad() => throw new TreechunkException("bad tag 'x y'", ExitCodes.BadInput);
        var (exit, stderr) = Guarded([], Bad);
        Assert.Equal(2, exit);
        Assert.Equal("treechunk: error: bad tag 'x y'", stderr.TrimEnd());
        var (_, debugErr) = Guarded(["--debug"], Bad);
        Assert.Contains("   at ", debugErr);

        var (ioExit, ioErr) = Guarded([], () => throw new IOException("No space left on device"));
        Assert.Equal(3, ioExit);
        Assert.Equal("treechunk: error: No space left on device", ioErr.TrimEnd());
    }
}
