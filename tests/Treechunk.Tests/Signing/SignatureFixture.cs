using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Treechunk.Tests.Registry;
using Treechunk.Tests.Support;
using Treechunk.Tests.Support.Registry;

namespace Treechunk.Tests.Signing;

/// <summary>
/// A real docker-registry, two small images (v1, v2) as layouts, and two key pairs made by
/// <c>treechunk oci generate-key</c> (ours, and another signer's), shared by a test class; each
/// test pushes to repositories of its own.
/// </summary>
public sealed class SignatureFixture : IDisposable
{
    public const string Password = "correct horse 42";
    public TempDir Dir { get; } = new("sign");
    public RegistryServer Registry { get; } = RegistryServer.StartAnonymous();
    public Dictionary<string, string> Env { get; }
    public TestImageInfo V1 { get; }
    public TestImageInfo V2 { get; }
    public string Key => Dir["ours.key"];
    public string Pub => Dir["ours.pub"];
    public string OtherKey => Dir["other.key"];
    public string OtherPub => Dir["other.pub"];

    private static readonly HttpClient Http = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(30) };

    public SignatureFixture()
    {
        Env = RegistryClientTests.Env(Dir);
        Env["TREECHUNK_PASSWORD"] = Password;
        // The test registry is plain HTTP: say so once, where treechunk, skopeo and podman all read it.
        File.WriteAllText(Dir["registries.conf"], $"[[registry]]\nlocation = \"{Registry.Host}\"\ninsecure = true\n");
        V1 = TestImage.Write(Dir["v1"], 20_000, seed: 1);
        V2 = TestImage.Write(Dir["v2"], 20_000, seed: 2);
        RegistryClientTests.Json(Env, "oci", "generate-key", "--output-key-prefix", Dir["ours"]);
        RegistryClientTests.Json(new Dictionary<string, string>(Env) { ["TREECHUNK_PASSWORD"] = "someone else" },
            "oci", "generate-key", "--output-key-prefix", Dir["other"]);
        // The policy and registries.d skopeo reads sigstore attachments with.
        Directory.CreateDirectory(Dir["registries.d"]);
        File.WriteAllText(Dir["registries.d/test.yaml"], $"docker:\n  {Registry.Host}:\n    use-sigstore-attachments: true\n");
        File.WriteAllText(Dir["any.json"], "{\"default\":[{\"type\":\"insecureAcceptAnything\"}]}");
    }

    /// <summary>docker://HOST/REPO:TAG on the test registry.</summary>
    public string Ref(string repoAndTag) => $"docker://{Registry.Host}/{repoAndTag}";

    public string Push(TestImageInfo image, string repoAndTag)
    {
        RegistryClientTests.Json(Env, "oci", "push", image.OciRef, Ref(repoAndTag));
        return Ref(repoAndTag);
    }

    public JsonNode Json(params string[] args) => RegistryClientTests.Json(Env, args);

    public ProcResult Run(params string[] args) => TreechunkCli.RunWithEnv(Env, args);

    public string Fails(int exit, params string[] args) => RegistryClientTests.Fails(Env, exit, args);

    public string Fails(IDictionary<string, string> extraEnv, int exit, params string[] args)
    {
        var env = new Dictionary<string, string>(Env);
        foreach (var (k, v) in extraEnv) env[k] = v;
        return RegistryClientTests.Fails(env, exit, args);
    }

    /// <summary>skopeo with the test's registries.conf, and the policy and registries.d given.</summary>
    public ProcResult Skopeo(params string[] args) =>
        Proc.Run(Tools.Require("skopeo"), args, env: Env, timeout: TimeSpan.FromMinutes(3));

    public string SkopeoCheck(params string[] args)
    {
        var r = Skopeo(args);
        if (r.ExitCode != 0) throw new Xunit.Sdk.XunitException($"skopeo {string.Join(' ', args)} failed: {r}");
        return r.Stderr + r.Stdout;
    }

    // The registry's API, as any client speaks it, for reading what was stored and for planting
    // the crafted signature manifests of the bad-input tests.

    private string Api(string repo, string rest) => $"{Registry.Url}/v2/{repo}/{rest}";

    public byte[] GetManifest(string repo, string reference)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, Api(repo, "manifests/" + reference));
        request.Headers.Accept.ParseAdd("application/vnd.oci.image.manifest.v1+json");
        request.Headers.Accept.ParseAdd("application/vnd.oci.image.index.v1+json");
        using var response = Http.Send(request);
        Assert.True(response.IsSuccessStatusCode, $"GET manifest {repo}:{reference}: {response.StatusCode}");
        return response.Content.ReadAsByteArrayAsync().GetAwaiter().GetResult();
    }

    public bool HasManifest(string repo, string reference)
    {
        using var request = new HttpRequestMessage(HttpMethod.Head, Api(repo, "manifests/" + reference));
        request.Headers.Accept.ParseAdd("application/vnd.oci.image.manifest.v1+json");
        request.Headers.Accept.ParseAdd("application/vnd.oci.image.index.v1+json");
        using var response = Http.Send(request);
        return response.StatusCode == HttpStatusCode.OK;
    }

    public byte[] GetBlob(string repo, string digest)
    {
        using var response = Http.Send(new HttpRequestMessage(HttpMethod.Get, Api(repo, "blobs/" + digest)));
        Assert.True(response.IsSuccessStatusCode, $"GET blob {digest}: {response.StatusCode}");
        return response.Content.ReadAsByteArrayAsync().GetAwaiter().GetResult();
    }

    public static string Sha256(byte[] bytes) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes));

    public void PutBlob(string repo, byte[] bytes)
    {
        using var start = Http.Send(new HttpRequestMessage(HttpMethod.Post, Api(repo, "blobs/uploads/")));
        Assert.Equal(HttpStatusCode.Accepted, start.StatusCode);
        var location = new Uri(new Uri(Registry.Url), start.Headers.Location!);
        var put = new UriBuilder(location);
        put.Query = (put.Query.TrimStart('?') is { Length: > 0 } q ? q + "&" : "") + "digest=" + Uri.EscapeDataString(Sha256(bytes));
        using var body = new ByteArrayContent(bytes);
        body.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var done = Http.Send(new HttpRequestMessage(HttpMethod.Put, put.Uri) { Content = body });
        Assert.Equal(HttpStatusCode.Created, done.StatusCode);
    }

    public void PutManifest(string repo, string reference, byte[] raw, string mediaType = "application/vnd.oci.image.manifest.v1+json")
    {
        using var body = new ByteArrayContent(raw);
        body.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
        using var response = Http.Send(new HttpRequestMessage(HttpMethod.Put, Api(repo, "manifests/" + reference)) { Content = body });
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"PUT manifest {repo}:{reference}: {response.StatusCode} {response.Content.ReadAsStringAsync().Result}");
    }

    /// <summary>
    /// Stores a signature manifest of our own making at <paramref name="tag"/>: one
    /// simple-signing layer holding <paramref name="payload"/> with <paramref name="signature"/>
    /// as its annotation, the way cosign lays it out.
    /// </summary>
    public void PlantSignature(string repo, string tag, byte[] payload, byte[] signature)
    {
        var config = Encoding.UTF8.GetBytes($"{{\"architecture\":\"\",\"os\":\"\",\"config\":{{}},\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[\"{Sha256(payload)}\"]}}}}");
        PutBlob(repo, payload);
        PutBlob(repo, config);
        var manifest = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = "application/vnd.oci.image.manifest.v1+json",
            ["config"] = new JsonObject { ["mediaType"] = "application/vnd.oci.image.config.v1+json", ["digest"] = Sha256(config), ["size"] = config.Length },
            ["layers"] = new JsonArray(new JsonObject
            {
                ["mediaType"] = "application/vnd.dev.cosign.simplesigning.v1+json", ["digest"] = Sha256(payload), ["size"] = payload.Length,
                ["annotations"] = new JsonObject { ["dev.cosignproject.cosign/signature"] = Convert.ToBase64String(signature) },
            }),
        };
        PutManifest(repo, tag, Encoding.UTF8.GetBytes(manifest.ToJsonString()));
    }

    /// <summary>The signature manifest at sha256-HEX.sig of <paramref name="digest"/>, its first layer's payload bytes and signature.</summary>
    public (JsonNode Manifest, byte[] Payload, byte[] Signature) ReadSignature(string repo, string digest, int layer = 0)
    {
        var manifest = JsonNode.Parse(GetManifest(repo, SigTag(digest)))!;
        var l = manifest["layers"]![layer]!;
        Assert.Equal("application/vnd.dev.cosign.simplesigning.v1+json", (string)l["mediaType"]!);
        return (manifest, GetBlob(repo, (string)l["digest"]!), Convert.FromBase64String((string)l["annotations"]!["dev.cosignproject.cosign/signature"]!));
    }

    public static string SigTag(string digest) => "sha256-" + digest["sha256:".Length..] + ".sig";

    public void Dispose()
    {
        Registry.Dispose();
        Dir.Dispose();
    }
}
