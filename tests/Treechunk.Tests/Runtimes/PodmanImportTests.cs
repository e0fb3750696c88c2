using System.Text.Json.Nodes;
using Treechunk.Tests.Registry;
using Treechunk.Tests.Support;
using Treechunk.Tests.Support.Registry;

namespace Treechunk.Tests.Runtimes;

/// <summary>
/// oci import-podman against the real podman 4.3: the archive streams into `podman load` of a
/// private storage, and podman's own images/inspect must show the image we built — its name,
/// labels, diff_ids, and the config digest as its id.
/// </summary>
public class PodmanImportTests(RuntimeImages fx) : IClassFixture<RuntimeImages>
{
    private static JsonNode Import(PodmanStore podman, params string[] args)
    {
        var r = TreechunkCli.RunWithEnv(podman.Env, ["oci", "import-podman", .. args, .. podman.Flags, "--json"]);
        Assert.True(r.ExitCode == 0, r.ToString());
        return JsonNode.Parse(r.Stdout)!;
    }

    /// <summary>podman's view of the loaded image is the image we built.</summary>
    private static void PodmanShows(PodmanStore podman, string name, BuiltImage image)
    {
        Assert.Contains(name, podman.Names());
        var inspect = podman.Inspect(name);
        Assert.Equal(image.ImageId, (string)inspect["Id"]!);
        Assert.Equal(image.DiffIds, inspect["RootFS"]!["Layers"]!.AsArray().Select(l => (string)l!));
        Assert.Equal(RuntimeImages.ExpectedLabels, inspect["Labels"]!.AsObject().ToDictionary(kv => kv.Key, kv => (string)kv.Value!));
        Assert.Contains(name, inspect["RepoTags"]!.AsArray().Select(t => (string)t!));
    }

    [Fact]
    public void Podman_load_of_the_stream_lists_the_tag_with_our_labels_diff_ids_and_config_digest()
    {
        using var podman = new PodmanStore();
        var json = Import(podman, fx.Gzip.Ref);

        Assert.Equal("podman", (string)json["engine"]!);
        Assert.Equal("docker-archive", (string)json["format"]!);
        Assert.Equal(fx.Gzip.Ref, (string)json["source"]!);
        Assert.Equal("localhost/os:v1", (string)json["name"]!);
        Assert.Equal(["localhost/os:v1"], json["loaded"]!.AsArray().Select(l => (string)l!));
        Assert.False((bool)json["pulled"]!);
        Assert.Equal(fx.Gzip.ManifestDigest, (string)json["manifest_digest"]!);
        Assert.Equal(fx.Gzip.ManifestDigest, (string)json["archive_manifest_digest"]!);
        Assert.Equal(fx.Gzip.ConfigDigest, (string)json["config_digest"]!);
        Assert.Equal(fx.Gzip.LayerDigests.Count, (int)json["layers"]!);
        Assert.Equal(0, (int)json["recompressed_layers"]!);
        Assert.True((long)json["bytes"]! > 1_000_000);

        PodmanShows(podman, "localhost/os:v1", fx.Gzip);
        // podman read the OCI view (our stored manifest, digest kept), not only docker's manifest.json.
        Assert.Equal(fx.Gzip.ManifestDigest, (string)podman.Inspect("localhost/os:v1")["Digest"]!);
    }

    [Fact]
    public void Tag_overrides_the_loaded_name_as_a_tag_or_a_whole_name()
    {
        using var podman = new PodmanStore();
        var r = TreechunkCli.RunWithEnv(podman.Env, ["oci", "import-podman", fx.Gzip.Ref, "--tag", "v9", .. podman.Flags]);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.StartsWith("podman: loaded localhost/os:v9 (image id " + fx.Gzip.ConfigDigest, r.Stdout);
        Assert.Equal("docker.io/example/os:v2", (string)Import(podman, fx.Gzip.Ref, "--tag", "example/os:v2")["name"]!);

        PodmanShows(podman, "localhost/os:v9", fx.Gzip);
        PodmanShows(podman, "docker.io/example/os:v2", fx.Gzip);
        Assert.DoesNotContain("localhost/os:v1", podman.Names());
    }

    [Fact]
    public void Zstd_layers_are_recompressed_said_so_and_podman_gets_the_same_diff_ids()
    {
        using var podman = new PodmanStore();
        var r = TreechunkCli.RunWithEnv(podman.Env, ["oci", "import-podman", fx.Zstd.Ref, .. podman.Flags]);
        Assert.True(r.ExitCode == 0, r.ToString());
        int layers = fx.Zstd.LayerDigests.Count;
        Assert.Contains($"warning: {layers} of {layers} layers are zstd, which a docker-archive cannot hold: recompressing them to gzip", r.Stderr);
        Assert.Contains($"{layers} recompressed to gzip", r.Stdout);
        // diff_ids are digests of the uncompressed tars: recompression leaves them, and the config, alone.
        PodmanShows(podman, "localhost/os-zstd:v1", fx.Zstd);

        var json = Import(podman, fx.Zstd.Ref, "--tag", "again");
        Assert.Equal(layers, (int)json["recompressed_layers"]!);
        Assert.Equal(fx.Zstd.ManifestDigest, (string)json["manifest_digest"]!);
        var archiveManifest = (string)json["archive_manifest_digest"]!;
        Assert.NotEqual(fx.Zstd.ManifestDigest, archiveManifest);
        // podman holds the manifest of the gzip layers the archive carried.
        Assert.Equal(archiveManifest, (string)podman.Inspect("localhost/os-zstd:again")["Digest"]!);
    }

    [Fact]
    public void A_corrupt_layer_fails_the_import_naming_it_and_podman_loads_nothing()
    {
        using var tmp = new TempDir("podman-corrupt");
        using var podman = new PodmanStore();
        var (corrupt, blob) = fx.CorruptCopy(tmp["layout"]);
        var r = TreechunkCli.RunWithEnv(podman.Env, ["oci", "import-podman", corrupt, .. podman.Flags]);
        Assert.Equal(1, r.ExitCode);
        var line = Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"treechunk: error: layer blob sha256:{blob} is corrupt", line);
        Assert.Empty(podman.Names());
    }

    [Fact]
    public void Seed_flags_pull_from_a_registry_first_and_name_the_image_after_it()
    {
        using var tmp = new TempDir("podman-reg");
        using var registry = RegistryServer.StartAnonymous();
        using var podman = new PodmanStore();
        var env = RegistryClientTests.Env(tmp);
        Directory.CreateDirectory(tmp["scratch"]);
        env["TMPDIR"] = tmp["scratch"];
        foreach (var (k, v) in podman.Env) env[k] = v;
        RegistryClientTests.Json(env, "oci", "push", "--insecure", fx.Gzip.Ref, $"docker://{registry.Host}/x/y:t");
        registry.ClearRequests();

        var json = RegistryClientTests.Json(env, ["oci", "import-podman", "--insecure", "--registry", registry.Host, "--repository", "x/y", "--tag", "t", .. podman.Flags]);
        Assert.True((bool)json["pulled"]!);
        Assert.Equal($"{registry.Host}/x/y:t", (string)json["name"]!);
        Assert.Equal(fx.Gzip.ManifestDigest, (string)json["manifest_digest"]!);
        PodmanShows(podman, $"{registry.Host}/x/y:t", fx.Gzip);
        // Pulled from the registry (each blob once), into a scratch layout that is gone afterwards.
        foreach (var layer in fx.Gzip.LayerDigests) Assert.Equal(1, registry.CountBlobGets(layer));
        Assert.Empty(Directory.EnumerateFileSystemEntries(tmp["scratch"], ".treechunk-*"));

        // A docker:// reference works the same, and --tag then renames.
        var renamed = RegistryClientTests.Json(env, ["oci", "import-podman", "--insecure", $"docker://{registry.Host}/x/y:t", "--tag", "renamed", .. podman.Flags]);
        Assert.Equal($"{registry.Host}/x/y:renamed", (string)renamed["name"]!);
        PodmanShows(podman, $"{registry.Host}/x/y:renamed", fx.Gzip);
    }
}
