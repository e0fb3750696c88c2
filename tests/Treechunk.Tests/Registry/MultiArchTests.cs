using System.Text.Json.Nodes;
using Treechunk.Tests.CommandLine;
using Treechunk.Tests.Support;
using Treechunk.Tests.Support.Registry;

namespace Treechunk.Tests.Registry;

/// <summary>
/// examples/multiarch.sh run for real, once for the tests below, against a registry of the
/// fixture's own: a small treefile composed for amd64 and for arm64 (mmdebstrap
/// --architectures=arm64, its binaries run by qemu-user through binfmt_misc), each pushed as
/// 42-ARCH, and the index 42 created over them.
/// </summary>
public sealed class MultiArchFixture : IDisposable
{
    public TempDir Dir { get; } = new("multiarch");
    public RegistryServer Registry { get; }
    public string Out => Dir["out"];
    public string Arm64 => Dir["out/oci-image-arm64"];
    public string Amd64 => Dir["out/oci-image-amd64"];
    public ProcResult Script { get; }
    public string Arm64Digest { get; } = "";
    public string Amd64Digest { get; } = "";

    public MultiArchFixture()
    {
        Registry = RegistryServer.StartAnonymous();
        foreach (var d in new[] { "cache", "run", "docker" }) Directory.CreateDirectory(Dir[d]);
        var tf = Dir["tf"];
        Directory.CreateDirectory(tf);
        File.Copy(Path.Join(Fixtures.RepoRoot, "examples/debian-minimal/debian.sources"), Path.Join(tf, "debian.sources"));
        File.WriteAllText(Path.Join(tf, "treefile.yaml"), """
            ref: test/bookworm/${basearch}
            repos: [debian]
            packages: [bash]
            container-cmd: ["/bin/bash"]
            """);
        // The script runs the CLI the tests run, not a fresh publish.
        var wrapper = Dir["treechunk"];
        File.WriteAllText(wrapper, $"#!/bin/sh\nexec {TreechunkCli.ShellCommand} \"$@\"\n");
        File.SetUnixFileMode(wrapper, (UnixFileMode)0x1ED);
        Script = Proc.Run("bash", [Path.Join(Fixtures.RepoRoot, "examples/multiarch.sh"), Path.Join(tf, "treefile.yaml")], env: new Dictionary<string, string>
        {
            ["ARCHITECTURES"] = "amd64 arm64", ["REGISTRY"] = Registry.Host, ["INSECURE"] = "1", ["REPOSITORY"] = "os/multi", ["TAG"] = "42",
            ["OUT"] = Out, ["TREECHUNK"] = wrapper, ["SOURCE_DATE_EPOCH"] = "1700000000",
            // Registry settings, credentials and blob locations of its own (HOME stays, for dotnet restore).
            ["XDG_CACHE_HOME"] = Dir["cache"], ["XDG_RUNTIME_DIR"] = Dir["run"], ["CONTAINERS_REGISTRIES_CONF"] = Dir["registries.conf"],
            ["REGISTRY_AUTH_FILE"] = Dir["auth.json"], ["DOCKER_CONFIG"] = Dir["docker"],
        }, timeout: TimeSpan.FromMinutes(20));
        if (Script.ExitCode != 0) return;
        string DigestOf(string layout) => (string)JsonNode.Parse(TreechunkCli.Check("oci", "inspect", $"oci:{layout}:42", "--json"))!["manifest_digest"]!;
        Arm64Digest = DigestOf(Arm64);
        Amd64Digest = DigestOf(Amd64);
    }

    public void Dispose()
    {
        Registry.Dispose();
        Dir.Dispose();
    }
}

public class MultiArchTests(MultiArchFixture fx) : IClassFixture<MultiArchFixture>
{
    private static JsonNode SkopeoJson(params string[] args) => JsonNode.Parse(Skopeo.Check(args))!;

    private static List<string> Platforms(JsonNode index) =>
        index["manifests"]!.AsArray().Select(m => $"{m!["platform"]!["os"]}/{m["platform"]!["architecture"]}{(m["platform"]!["variant"] is { } v ? "/" + v : "")}").ToList();

    [Fact]
    public void An_arm64_compose_gives_aarch64_binaries_and_an_arm64_config()
    {
        Assert.True(fx.Script.ExitCode == 0, fx.Script.ToString());
        using var tmp = new TempDir("arm64-tree");
        TreechunkCli.Check("oci", "extract", $"oci:{fx.Arm64}:42", tmp["root"]);
        // ELF header: class 64-bit, e_machine 0xB7 (EM_AARCH64) at offset 18, little-endian.
        var elf = File.ReadAllBytes(tmp["root/usr/bin/bash"]).AsSpan(0, 20).ToArray();
        Assert.Equal("\u007fELF"u8.ToArray(), elf[..4]);
        Assert.Equal(2, elf[4]);
        Assert.Equal(0xB7, elf[18] | elf[19] << 8);
        Assert.Contains("aarch64", Proc.Check("file", "-b", tmp["root/usr/bin/bash"]));
        var config = SkopeoJson("inspect", "--config", $"oci:{fx.Arm64}:42");
        Assert.Equal("arm64", (string)config["architecture"]!);
        Assert.Equal("v8", (string)config["variant"]!);
        Assert.Equal("arm64", (string)SkopeoJson("inspect", $"oci:{fx.Arm64}:42")["Architecture"]!);
        // ${basearch} named the branch after the architecture, as rpm-ostree does.
        var refs = Proc.Check(Tools.Require("ostree"), "--repo=" + Path.Join(fx.Out, "repo"), "refs");
        Assert.Contains("test/bookworm/aarch64", refs);
        Assert.Contains("test/bookworm/x86_64", refs);
    }

    [Fact]
    public void The_multiarch_example_ends_with_the_index_pushed()
    {
        Assert.True(fx.Script.ExitCode == 0, fx.Script.ToString());
        var raw = SkopeoJson("inspect", "--tls-verify=false", "--raw", $"docker://{fx.Registry.Host}/os/multi:42");
        Assert.Equal(["linux/amd64", "linux/arm64/v8"], Platforms(raw));
        Assert.Equal([fx.Amd64Digest, fx.Arm64Digest], raw["manifests"]!.AsArray().Select(m => (string)m!["digest"]!));
        Assert.Equal(fx.Arm64Digest, (string)SkopeoJson("inspect", "--tls-verify=false", $"docker://{fx.Registry.Host}/os/multi:42-arm64")["Digest"]!);
        Assert.Contains("linux/arm64/v8", fx.Script.Stdout);
        Assert.Equal("amd64", (string)SkopeoJson("inspect", "--config", $"oci:{fx.Amd64}:42")["architecture"]!);
    }

    [Fact]
    public void Manifest_create_from_per_architecture_tags_gives_an_index_skopeo_picks_from()
    {
        Assert.True(fx.Script.ExitCode == 0, fx.Script.ToString());
        using var tmp = new TempDir("multiarch-reg");
        using var registry = RegistryServer.StartAnonymous();
        var env = RegistryClientTests.Env(tmp);
        RegistryClientTests.Json(env, "oci", "push", "--insecure", $"oci:{fx.Amd64}:42", "--registry", registry.Host, "--repository", "os/multi", "--tag", "42-amd64");
        RegistryClientTests.Json(env, "oci", "push", "--insecure", $"oci:{fx.Arm64}:42", "--registry", registry.Host, "--repository", "os/multi", "--tag", "42-arm64");

        var created = RegistryClientTests.Json(env, "oci", "manifest", "create", "--insecure", "--registry", registry.Host, "--repository", "os/multi", "--tag", "42", "--architectures", "amd64,arm64");
        var reference = $"docker://{registry.Host}/os/multi:42";
        var raw = SkopeoJson("inspect", "--tls-verify=false", "--raw", reference);
        Assert.Equal("application/vnd.oci.image.index.v1+json", (string)raw["mediaType"]!);
        Assert.Equal(["linux/amd64", "linux/arm64/v8"], Platforms(raw));
        Assert.Equal([fx.Amd64Digest, fx.Arm64Digest], raw["manifests"]!.AsArray().Select(m => (string)m!["digest"]!));
        var rawBytes = System.Text.Encoding.UTF8.GetBytes(Skopeo.Check("inspect", "--tls-verify=false", "--raw", reference));
        Assert.Equal((string)created["digest"]!, "sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(rawBytes)));

        // skopeo takes the arm64 image out of it, as a runtime on arm64 would.
        Skopeo.Check("copy", "--src-tls-verify=false", "--override-arch", "arm64", reference, $"oci:{tmp["arm"]}:x");
        Assert.Equal(fx.Arm64Digest, (string)SkopeoJson("inspect", $"oci:{tmp["arm"]}:x")["Digest"]!);
        // Our commands pick the host's platform from an index, or --platform.
        Assert.Equal("amd64", (string)RegistryClientTests.Json(env, "oci", "inspect", "--insecure", reference)["config"]!["architecture"]!);
        var copied = RegistryClientTests.Json(env, "oci", "copy", "--insecure", "--platform", "linux/arm64", reference, $"oci:{tmp["ours-arm"]}");
        Assert.Equal(fx.Arm64Digest, (string)copied["digest"]!);
        var shown = RegistryClientTests.Json(env, "oci", "manifest", "inspect", "--insecure", reference);
        Assert.True((bool)shown["index"]!);
        Assert.Equal(["linux/amd64", "linux/arm64/v8"], shown["manifests"]!.AsArray().Select(m => (string)m!["platform"]!));

        // The whole index travels through a chunk directory: skopeo --all writes it, we merge it.
        Skopeo.Check("copy", "--all", "--src-tls-verify=false", reference, $"dir:{tmp["chunks"]}");
        var merged = JsonNode.Parse(TreechunkCli.Check("oci", "chunk", "merge", tmp["chunks"], $"oci:{tmp["merged"]}:42", "--json"))!;
        Assert.Equal((string)created["digest"]!, (string)merged["digest"]!);
        TreechunkCli.Check("oci", "chunk", "split", $"oci:{tmp["merged"]}:42", tmp["ours-chunks"]);
        Skopeo.Check("copy", "--all", "--dest-tls-verify=false", $"dir:{tmp["ours-chunks"]}", $"docker://{registry.Host}/os/again:42");
        Assert.Equal(["linux/amd64", "linux/arm64/v8"], Platforms(SkopeoJson("inspect", "--tls-verify=false", "--raw", $"docker://{registry.Host}/os/again:42")));
    }

    [Fact]
    public void Manifest_create_into_a_layout_from_local_images()
    {
        Assert.True(fx.Script.ExitCode == 0, fx.Script.ToString());
        using var tmp = new TempDir("multiarch-local");
        var created = JsonNode.Parse(TreechunkCli.Check("oci", "manifest", "create", "--output", $"oci:{tmp["multi"]}:42", $"oci:{fx.Amd64}:42", "--manifest", $"oci:{fx.Arm64}:42", "--json"))!;
        var raw = SkopeoJson("inspect", "--raw", $"oci:{tmp["multi"]}:42");
        Assert.Equal(["linux/amd64", "linux/arm64/v8"], Platforms(raw));
        Skopeo.Check("copy", "--override-arch", "arm64", $"oci:{tmp["multi"]}:42", $"oci:{tmp["arm"]}:x");
        Assert.Equal(fx.Arm64Digest, (string)SkopeoJson("inspect", $"oci:{tmp["arm"]}:x")["Digest"]!);
        TreechunkCli.Check("oci", "verify-layers", "--platform", "linux/arm64", $"oci:{tmp["multi"]}:42");
        // --platform picks that image out of the index; without it, the host's (amd64).
        var arm = JsonNode.Parse(TreechunkCli.Check("oci", "inspect", "--platform", "linux/arm64", $"oci:{tmp["multi"]}:42", "--json"))!;
        Assert.Equal(fx.Arm64Digest, (string)arm["manifest_digest"]!);
        Assert.Equal(fx.Amd64Digest, (string)JsonNode.Parse(TreechunkCli.Check("oci", "inspect", $"oci:{tmp["multi"]}:42", "--json"))!["manifest_digest"]!);
        Assert.Contains("linux/arm64/v8", TreechunkCli.Fails(2, "oci", "inspect", "--platform", "linux/s390x", $"oci:{tmp["multi"]}:42"));
        Assert.Contains("not linux/arm64", TreechunkCli.Fails(2, "oci", "inspect", "--platform", "linux/arm64", $"oci:{fx.Amd64}:42"));
        // Only the index is tagged in the layout; its images are there by digest.
        var index = JsonNode.Parse(File.ReadAllText(Path.Join(tmp["multi"], "index.json")))!;
        Assert.Equal((string)created["digest"]!, (string)index["manifests"]![0]!["digest"]!);
        Assert.Single(index["manifests"]!.AsArray());
    }

    [Fact]
    public void Bad_index_input_is_one_clear_line()
    {
        Assert.True(fx.Script.ExitCode == 0, fx.Script.ToString());
        using var tmp = new TempDir("multiarch-bad");
        using var registry = RegistryServer.StartAnonymous();
        var env = RegistryClientTests.Env(tmp);
        RegistryClientTests.Json(env, "oci", "push", "--insecure", $"oci:{fx.Amd64}:42", $"docker://{registry.Host}/os/multi:42-amd64");
        Assert.Contains("42-ppc64le", RegistryClientTests.Fails(env, 2, "oci", "manifest", "create", "--insecure", "--registry", registry.Host, "--repository", "os/multi", "--tag", "42", "--architectures", "amd64,ppc64le"));
        Assert.Contains("unknown architecture 'sparc9'", RegistryClientTests.Fails(env, 2, "oci", "manifest", "create", "--insecure", "--registry", registry.Host, "--repository", "os/multi", "--tag", "42", "--architectures", "amd64,sparc9"));
        Assert.Contains("both linux/amd64", TreechunkCli.Fails(2, "oci", "manifest", "create", "--output", $"oci:{tmp["x"]}:1", $"oci:{fx.Amd64}:42", $"oci:{fx.Amd64}:42"));
        Assert.False(File.Exists(Path.Join(tmp["x"], "index.json")));
        Directory.CreateDirectory(tmp["rootfs"]);
        Assert.Contains("unknown architecture", TreechunkCli.Fails(2, "compose", "build-chunked-oci", "--rootfs", tmp["rootfs"], "--output", $"oci:{tmp["y"]}", "--arch", "vax"));
        Assert.Contains("--output", TreechunkCli.Fails(2, "oci", "manifest", "create", $"oci:{fx.Amd64}:42"));
        Assert.Equal(0, registry.Count("PUT", "/manifests/42$"));
    }
}
