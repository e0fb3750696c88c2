using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Treechunk.Oci;
using Treechunk.Registry;
using Treechunk.Transports;

namespace Treechunk.Signing;

public sealed record SignOptions
{
    public required ECDsa Key { get; init; }
    /// <summary>PEM certificate attached to the signature (its public key must be the key's).</summary>
    public string? CertificatePem { get; init; }
    /// <summary>Claims written to the payload's optional section (cosign's -a).</summary>
    public IReadOnlyDictionary<string, string> Annotations { get; init; } = new Dictionary<string, string>();
    /// <summary>The repository the signature names; default: the registry image's own.</summary>
    public string? Identity { get; init; }
    /// <summary>Store as an OCI 1.1 referrer (subject) instead of at the sha256-HEX.sig tag.</summary>
    public bool Referrers { get; init; }
}

/// <param name="StoredAt">The tag the signature manifest is at, or for a referrer its digest.</param>
/// <param name="Signatures">How many signatures the manifest at the .sig tag now holds (1 for a referrer).</param>
/// <param name="Fallback">For a referrer: whether the referrers tag scheme stood in for a missing referrers API.</param>
public sealed record SignResult(string ImageDigest, string Identity, string SignatureManifestDigest, string StoredAt, int Signatures, bool Fallback);

/// <summary>One signature found for an image and what became of checking it.</summary>
/// <param name="Origin">Where it was found: "tag sha256-HEX.sig" or "referrer sha256:...".</param>
public sealed record SignatureCheck(string Origin, int Layer, string? PayloadDigest, bool Ok, string? Problem,
    string? Identity, string? Key, IReadOnlyDictionary<string, string>? Optional);

public sealed record VerifyResult(string ImageDigest, string? ExpectedIdentity, IReadOnlyList<SignatureCheck> Checks)
{
    public IEnumerable<SignatureCheck> Verified => Checks.Where(c => c.Ok);

    /// <summary>Why nothing verified, as one line.</summary>
    public string Failure => Checks.Count switch
    {
        0 => $"no signature found for {ImageDigest} (looked at tag {SignatureStore.SignatureTag(ImageDigest)} and its referrers)",
        1 => $"the signature of {ImageDigest} did not verify: {Checks[0].Problem}",
        _ => $"none of the {Checks.Count} signatures of {ImageDigest} verified: " +
             string.Join("; ", Checks.Select(c => $"{c.Origin} #{c.Layer}: {c.Problem}")),
    };
}

/// <summary>
/// Key-based signing and verification of images as cosign does them (sigstore/cosign
/// specs/SIGNATURE_SPEC.md), so that cosign, skopeo and podman verify what we sign and we verify
/// what they sign: the signature is ECDSA P-256 over SHA-256 of a simple-signing payload, which
/// names the manifest digest and the repository; the payload is a layer of a signature manifest
/// and the signature (base64 DER) that layer's annotation.
/// </summary>
public static class ImageSigning
{
    public const string SignatureAnnotation = "dev.cosignproject.cosign/signature";
    public const string CertificateAnnotation = "dev.sigstore.cosign/certificate";
    /// <summary>cosign's artifactType (and config media type) for a signature stored as an OCI 1.1 referrer.</summary>
    public const string ReferrerArtifactType = "application/vnd.dev.cosign.artifact.sig.v1+json";

    public static SignResult Sign(ImageReference reference, SignOptions options)
    {
        using var store = new SignatureStore(reference);
        var identity = options.Identity != null ? NormaliseIdentity(options.Identity, "--identity")
            : store.Repository ?? throw new TreechunkException(
                $"{reference} is not in a registry, so the repository the signature names must be given: --identity HOST/REPO (where the image will be pushed)");
        if (options.CertificatePem != null) CheckCertificate(options.CertificatePem, options.Key);
        var image = store.ResolveImage();

        var payload = SimpleSigning.Create(image.Digest, identity, options.Annotations);
        var signature = options.Key.SignData(payload, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
        var layer = new Descriptor
        {
            MediaType = SimpleSigning.MediaType, Digest = Digest.Sha256(payload), Size = payload.Length,
            Annotations = new SortedDictionary<string, string>(StringComparer.Ordinal) { [SignatureAnnotation] = Convert.ToBase64String(signature) },
        };
        if (options.CertificatePem != null) layer.Annotations[CertificateAnnotation] = options.CertificatePem;

        return options.Referrers
            ? StoreAsReferrer(store, image, layer, payload, identity)
            : StoreAtTag(store, image, layer, payload, identity);
    }

    /// <summary>Appends to the manifest at sha256-HEX.sig (what is there stays), as cosign and skopeo do.</summary>
    private static SignResult StoreAtTag(SignatureStore store, Descriptor image, Descriptor layer, byte[] payload, string identity)
    {
        var tag = SignatureStore.SignatureTag(image.Digest);
        var layers = new List<Descriptor>();
        ImageManifest manifest;
        if (store.ReadTag(tag) is { } existing)
        {
            if (!MediaTypes.IsManifest(existing.Descriptor.MediaType))
                throw new TreechunkException($"{store.Name}: tag {tag} holds a {existing.Descriptor.MediaType}, not a signature manifest; refusing to replace it");
            manifest = OciJson.Deserialize<ImageManifest>(existing.Raw, $"signature manifest {tag}");
            layers.AddRange(manifest.Layers);
        }
        else manifest = new ImageManifest();
        layers.Add(layer);
        var config = SignatureConfig(layers);
        manifest.MediaType = MediaTypes.ImageManifest;
        manifest.Config = new Descriptor { MediaType = MediaTypes.ImageConfig, Digest = Digest.Sha256(config), Size = config.Length };
        manifest.Layers = layers;
        var raw = OciJson.Serialize(manifest);
        var d = new Descriptor { MediaType = MediaTypes.ImageManifest, Digest = Digest.Sha256(raw), Size = raw.Length };
        store.Write([(layer, payload), (manifest.Config, config)], [(d, raw, tag)]);
        return new SignResult(image.Digest, identity, d.Digest, tag, layers.Count, Fallback: false);
    }

    /// <summary>
    /// A manifest of its own whose subject is the image, as cosign's OCI 1.1 mode writes it. A
    /// registry with the referrers API indexes it by itself; elsewhere the index at tag
    /// sha256-HEX (the referrers tag scheme) gets it added.
    /// </summary>
    private static SignResult StoreAsReferrer(SignatureStore store, Descriptor image, Descriptor layer, byte[] payload, string identity)
    {
        var config = SignatureConfig([layer]);
        var manifest = new ImageManifest
        {
            MediaType = MediaTypes.ImageManifest,
            ArtifactType = ReferrerArtifactType,
            Config = new Descriptor { MediaType = ReferrerArtifactType, Digest = Digest.Sha256(config), Size = config.Length },
            Layers = [layer],
            Subject = new Descriptor { MediaType = image.MediaType, Digest = image.Digest, Size = image.Size },
        };
        var raw = OciJson.Serialize(manifest);
        var d = new Descriptor { MediaType = MediaTypes.ImageManifest, Digest = Digest.Sha256(raw), Size = raw.Length, ArtifactType = ReferrerArtifactType };
        var blobs = new List<(Descriptor, byte[])> { (layer, payload), (manifest.Config, config) };
        bool api = store.IsRegistry && store.ReferrersFromApi(image.Digest) != null;
        if (api)
        {
            store.Write(blobs, [(d, raw, null)]);
            return new SignResult(image.Digest, identity, d.Digest, d.Digest, 1, Fallback: false);
        }
        var tag = SignatureStore.ReferrersTag(image.Digest);
        var index = new ImageIndex { MediaType = MediaTypes.ImageIndex };
        if (store.ReadTag(tag) is { } existing)
        {
            if (!MediaTypes.IsIndex(existing.Descriptor.MediaType))
                throw new TreechunkException($"{store.Name}: tag {tag} holds a {existing.Descriptor.MediaType}, not a referrers index; refusing to replace it");
            index = OciJson.Deserialize<ImageIndex>(existing.Raw, $"referrers index {tag}");
        }
        index.Manifests.RemoveAll(m => m.Digest == d.Digest);
        index.Manifests.Add(d);
        var indexRaw = OciJson.Serialize(index);
        var indexDescriptor = new Descriptor { MediaType = MediaTypes.ImageIndex, Digest = Digest.Sha256(indexRaw), Size = indexRaw.Length };
        store.Write(blobs, [(d, raw, null), (indexDescriptor, indexRaw, tag)]);
        return new SignResult(image.Digest, identity, d.Digest, d.Digest, 1, Fallback: true);
    }

    /// <summary>The config of a signature manifest as skopeo writes it: an empty image whose diff_ids are the payload digests.</summary>
    private static byte[] SignatureConfig(IEnumerable<Descriptor> layers) =>
        System.Text.Encoding.UTF8.GetBytes(
            "{\"architecture\":\"\",\"os\":\"\",\"config\":{},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[" +
            string.Join(",", layers.Select(l => $"\"{l.Digest}\"")) + "]}}");

    /// <summary>HOST/REPO from what the user gave (a tag or digest on it is dropped: a signature names the repository).</summary>
    public static string NormaliseIdentity(string text, string what)
    {
        var t = text.StartsWith("docker://", StringComparison.Ordinal) ? text[9..] : text;
        return RegistryName.Parse(t, what).Name.ToString();
    }

    private static void CheckCertificate(string pem, ECDsa key)
    {
        X509Certificate2 cert;
        try
        {
            cert = X509Certificate2.CreateFromPem(pem);
        }
        catch (CryptographicException)
        {
            throw new TreechunkException("--cert is not a PEM certificate");
        }
        using (cert)
        {
            using var certKey = cert.GetECDsaPublicKey() ?? throw new TreechunkException("--cert: the certificate's key is not an EC key, so it is not the signing key");
            if (!SigningKeys.SamePublicKey(certKey, key))
                throw new TreechunkException($"--cert: the certificate ({cert.Subject}) is for another key than --key");
        }
    }

    /// <summary>
    /// Finds every signature of the image the reference names (at the .sig tag, and among its
    /// referrers: the registry's API, else the referrers tag) and checks each: the signature over
    /// the exact payload bytes with one of the keys, the payload's digest against the image's
    /// manifest digest, and its repository against <paramref name="identity"/> (default: the
    /// registry image's repository; a local image has none, so then the repository is reported).
    /// </summary>
    public static VerifyResult Verify(ImageReference reference, IReadOnlyList<(string Name, ECDsa Key)> keys, string? identity)
    {
        using var store = new SignatureStore(reference);
        var expected = identity != null ? NormaliseIdentity(identity, "--identity") : store.Repository;
        var image = store.ResolveImage();
        var checks = new List<SignatureCheck>();

        if (store.ReadTag(SignatureStore.SignatureTag(image.Digest)) is { } tagged)
            CheckManifest(store, $"tag {SignatureStore.SignatureTag(image.Digest)}", tagged.Descriptor, tagged.Raw, null, image, keys, expected, checks);

        var referrers = store.ReferrersFromApi(image.Digest);
        if (referrers == null && store.ReadTag(SignatureStore.ReferrersTag(image.Digest)) is { } fallback && MediaTypes.IsIndex(fallback.Descriptor.MediaType))
            referrers = OciJson.Deserialize<ImageIndex>(fallback.Raw, $"referrers index {SignatureStore.ReferrersTag(image.Digest)}");
        foreach (var r in referrers?.Manifests ?? [])
        {
            if (r.ArtifactType != null && r.ArtifactType != ReferrerArtifactType) continue;
            if (!MediaTypes.IsManifest(r.MediaType)) continue;
            byte[] raw;
            try
            {
                raw = store.ReadManifest(r);
            }
            catch (TreechunkException e)
            {
                checks.Add(new SignatureCheck($"referrer {r.Digest}", 0, null, false, e.Message, null, null, null));
                continue;
            }
            CheckManifest(store, $"referrer {r.Digest}", r, raw, image.Digest, image, keys, expected, checks);
        }
        return new VerifyResult(image.Digest, expected, checks);
    }

    private static void CheckManifest(SignatureStore store, string origin, Descriptor d, byte[] raw, string? subject, Descriptor image,
        IReadOnlyList<(string Name, ECDsa Key)> keys, string? expected, List<SignatureCheck> checks)
    {
        ImageManifest manifest;
        try
        {
            if (!MediaTypes.IsManifest(d.MediaType)) throw new TreechunkException($"it is a {d.MediaType}, not a manifest");
            manifest = OciJson.Deserialize<ImageManifest>(raw, "the signature manifest");
            if (subject != null && manifest.Subject?.Digest != subject)
                throw new TreechunkException($"its subject is {manifest.Subject?.Digest ?? "missing"}, not {subject}");
        }
        catch (TreechunkException e)
        {
            checks.Add(new SignatureCheck(origin, 0, null, false, e.Message, null, null, null));
            return;
        }
        for (int i = 0; i < manifest.Layers.Count; i++)
        {
            var layer = manifest.Layers[i];
            // Other attachments (attestations, SBOMs) may share the manifest; they are not signatures.
            if (layer.MediaType != SimpleSigning.MediaType) continue;
            checks.Add(CheckLayer(store, origin, i, layer, image, keys, expected));
        }
    }

    private static bool VerifiesWith(ECDsa key, byte[] payload, byte[] signature)
    {
        try
        {
            return key.VerifyData(payload, signature, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
        }
        catch (CryptographicException)
        {
            return false; // not even a DER signature
        }
    }

    private static SignatureCheck CheckLayer(SignatureStore store, string origin, int index, Descriptor layer, Descriptor image,
        IReadOnlyList<(string Name, ECDsa Key)> keys, string? expected)
    {
        SignatureCheck Bad(string problem, SignedClaims? claims = null, string? key = null) =>
            new(origin, index, layer.Digest, false, problem, claims?.DockerReference, key, claims?.Optional);
        if (layer.Annotations?.GetValueOrDefault(SignatureAnnotation) is not { } base64)
            return Bad($"the payload layer has no {SignatureAnnotation} annotation");
        byte[] signature;
        try
        {
            signature = Convert.FromBase64String(base64);
        }
        catch (FormatException)
        {
            return Bad("the signature annotation is not base64");
        }
        byte[] payload;
        try
        {
            payload = store.ReadBlob(layer, "signature payload");
        }
        catch (TreechunkException e)
        {
            return Bad($"payload {layer.Digest}: {e.Message}");
        }
        // The signature first: nothing an unverified payload says is worth reporting as a claim.
        var signer = keys.FirstOrDefault(k => VerifiesWith(k.Key, payload, signature));
        if (signer.Key == null)
            return Bad(keys.Count == 1 ? $"the signature does not verify with {keys[0].Name} (another key, or the payload was altered)" : "the signature does not verify with any of the keys");
        SignedClaims claims;
        try
        {
            claims = SimpleSigning.Parse(payload);
        }
        catch (TreechunkException e)
        {
            return Bad(e.Message, key: signer.Name);
        }
        if (claims.ManifestDigest != image.Digest)
            return Bad($"the payload is signed for manifest {claims.ManifestDigest}, not this image's {image.Digest}", claims, signer.Name);
        if (expected != null)
        {
            string named;
            try
            {
                named = NormaliseIdentity(claims.DockerReference, "the payload's docker-reference");
            }
            catch (TreechunkException)
            {
                return Bad($"the payload names '{claims.DockerReference}', which is not a repository", claims, signer.Name);
            }
            if (named != expected)
                return Bad($"the payload is signed for repository {named}, not {expected}", claims, signer.Name);
        }
        return new SignatureCheck(origin, index, layer.Digest, true, null, claims.DockerReference, signer.Name, claims.Optional);
    }
}
