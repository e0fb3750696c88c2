using System.Text.Json;
using System.Text.Json.Nodes;

namespace Treechunk.Signing;

/// <summary>What a signature payload claims: the manifest digest, the repository (docker reference), and free-form optional claims.</summary>
public sealed record SignedClaims(string ManifestDigest, string DockerReference, IReadOnlyDictionary<string, string> Optional);

/// <summary>
/// The simple-signing payload cosign signs (<c>application/vnd.dev.cosign.simplesigning.v1+json</c>):
/// <c>{"critical":{"identity":{"docker-reference":R},"image":{"docker-manifest-digest":D},"type":"cosign container image signature"},"optional":{...}}</c>.
/// The signature covers these exact bytes, so they are written once and never re-serialised.
/// Parsing is as strict as containers/image is (exactly these critical members), so a payload
/// we accept is one skopeo and podman accept too.
/// </summary>
public static class SimpleSigning
{
    public const string MediaType = "application/vnd.dev.cosign.simplesigning.v1+json";
    public const string SignatureType = "cosign container image signature";

    public static byte[] Create(string manifestDigest, string dockerReference, IReadOnlyDictionary<string, string>? optional)
    {
        Oci.Digest.Hex(manifestDigest);
        JsonNode? opt = null;
        if (optional is { Count: > 0 })
        {
            var o = new JsonObject();
            foreach (var (k, v) in optional.OrderBy(kv => kv.Key, StringComparer.Ordinal)) o[k] = v;
            opt = o;
        }
        var payload = new JsonObject
        {
            ["critical"] = new JsonObject
            {
                ["identity"] = new JsonObject { ["docker-reference"] = dockerReference },
                ["image"] = new JsonObject { ["docker-manifest-digest"] = manifestDigest },
                ["type"] = SignatureType,
            },
            ["optional"] = opt,
        };
        return System.Text.Encoding.UTF8.GetBytes(payload.ToJsonString(new JsonSerializerOptions
        {
            Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        }));
    }

    /// <summary>The claims of a payload; a payload of any other shape is a <see cref="TreechunkException"/> saying what is wrong.</summary>
    public static SignedClaims Parse(ReadOnlySpan<byte> payload)
    {
        try
        {
            return ParseCore(payload);
        }
        catch (ArgumentException)
        {
            // JsonObject refuses a member named twice, as containers/image does.
            throw new TreechunkException("the payload has a member named twice");
        }
    }

    private static SignedClaims ParseCore(ReadOnlySpan<byte> payload)
    {
        JsonObject root;
        try
        {
            root = JsonNode.Parse(payload) as JsonObject ?? throw new TreechunkException("the payload is not a JSON object");
        }
        catch (JsonException)
        {
            throw new TreechunkException("the payload is not JSON");
        }
        Exactly(root, "payload", "critical", "optional");
        var critical = root["critical"] as JsonObject ?? throw new TreechunkException("the payload's critical member is not an object");
        Exactly(critical, "critical", "identity", "image", "type");
        if (Text(critical["type"]) != SignatureType)
            throw new TreechunkException($"the payload's type is '{Text(critical["type"])}', not '{SignatureType}'");
        var image = critical["image"] as JsonObject ?? throw new TreechunkException("the payload's critical.image is not an object");
        Exactly(image, "critical.image", "docker-manifest-digest");
        var identity = critical["identity"] as JsonObject ?? throw new TreechunkException("the payload's critical.identity is not an object");
        Exactly(identity, "critical.identity", "docker-reference");
        var digest = Text(image["docker-manifest-digest"]) ?? throw new TreechunkException("the payload's docker-manifest-digest is not a string");
        var reference = Text(identity["docker-reference"]) ?? throw new TreechunkException("the payload's docker-reference is not a string");
        var optional = new Dictionary<string, string>(StringComparer.Ordinal);
        switch (root["optional"])
        {
            case null: break;
            case JsonObject o:
                foreach (var (k, v) in o) optional[k] = v is JsonValue ? v.ToString() : v?.ToJsonString() ?? "null";
                break;
            default: throw new TreechunkException("the payload's optional member is neither an object nor null");
        }
        return new SignedClaims(digest, reference, optional);
    }

    private static string? Text(JsonNode? n) => n is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    private static void Exactly(JsonObject o, string where, params string[] names)
    {
        foreach (var n in names)
            if (!o.ContainsKey(n)) throw new TreechunkException($"the payload's {where} has no '{n}'");
        foreach (var (k, _) in o)
            if (!names.Contains(k)) throw new TreechunkException($"the payload's {where} has an unknown member '{k}'");
    }
}
