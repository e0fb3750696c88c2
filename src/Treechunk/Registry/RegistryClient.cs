using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Treechunk.IO;
using Treechunk.Oci;

namespace Treechunk.Registry;

/// <summary>
/// One repository of a registry, in the distribution API's terms: manifests (GET, HEAD, PUT),
/// blobs (HEAD, GET with Range, uploads monolithic or chunked and resumable, cross-repository
/// mounts) and tags. Every transport failure becomes one clear <see cref="TreechunkException"/>.
/// </summary>
public sealed class RegistryClient
{
    /// <summary>Registries refuse manifests over 4 MiB; so do we, before reading more.</summary>
    public const int MaxManifestSize = 4 << 20;

    public static readonly string ManifestAccept = string.Join(", ", MediaTypes.ImageIndex, MediaTypes.ImageManifest, MediaTypes.DockerManifestList, MediaTypes.DockerManifest);

    private readonly RegistryContext _ctx;
    private readonly string _endpoint;
    private Uri? _base;

    public RegistryName Name { get; }
    public string Endpoint => _endpoint;

    internal RegistryClient(RegistryContext ctx, RegistryName name, string endpoint)
    {
        _ctx = ctx;
        Name = name;
        _endpoint = endpoint;
    }

    private string Where => _endpoint == Name.Endpoint ? $"{Name.Host}/{Name.Repository}" : $"{Name.Host}/{Name.Repository} (mirror {_endpoint})";

    private Uri Base
    {
        get
        {
            if (_base != null) return _base;
            if (_ctx.SettingsFor(Name.Host, Name.Repository) is { Blocked: true } blocked)
                throw new TreechunkException($"registry {Name.Host} is blocked in {blocked.Source}");
            return _base = _ctx.BaseUri(_endpoint, _ctx.IsInsecure(_endpoint == Name.Endpoint ? Name.Host : _endpoint, Name.Repository));
        }
    }

    public Uri Api(string relative) => new(Base, $"v2/{Name.Repository}/{relative}");

    private Uri Resolve(string location) => new(Base, location);

    internal HttpResponseMessage Send(HttpRequestMessage request, HttpCompletionOption completion = HttpCompletionOption.ResponseHeadersRead)
    {
        try
        {
            return _ctx.Http.Send(request, completion);
        }
        catch (HttpRequestException e)
        {
            throw TransportError(e, request);
        }
        catch (TaskCanceledException e)
        {
            throw new TreechunkException($"{Where}: {request.Method} {request.RequestUri?.AbsolutePath} timed out", ExitCodes.EnvironmentError, e);
        }
    }

    internal TreechunkException TransportError(HttpRequestException e, HttpRequestMessage? request)
    {
        var host = request?.RequestUri?.Authority ?? _endpoint;
        if (RegistryContext.IsTlsFailure(e))
            return new TreechunkException($"{host}: TLS handshake failed ({Inner(e)}); if it is a plain-HTTP registry, use --insecure or set insecure = true for it in registries.conf", ExitCodes.EnvironmentError, e);
        if (RegistryContext.IsRefused(e))
            return new TreechunkException($"cannot reach registry {host}: connection refused", ExitCodes.EnvironmentError, e);
        return new TreechunkException($"cannot reach registry {host}: {Inner(e)}", ExitCodes.EnvironmentError, e);
    }

    private static string Inner(Exception e)
    {
        while (e.InnerException != null) e = e.InnerException;
        return e.Message.Split('\n')[0];
    }

    /// <summary>The registry's answer as one line: status, and the first error of its JSON body when it sent one.</summary>
    internal TreechunkException Failure(HttpResponseMessage response, string what)
    {
        string detail = "";
        try
        {
            var body = response.Content.ReadAsByteArrayAsync().GetAwaiter().GetResult();
            if (body.Length is > 0 and < 65536)
            {
                using var doc = JsonDocument.Parse(body);
                if (doc.RootElement.TryGetProperty("errors", out var errors) && errors.ValueKind == JsonValueKind.Array && errors.GetArrayLength() > 0)
                {
                    var first = errors[0];
                    var code = first.TryGetProperty("code", out var c) ? c.GetString() : null;
                    var message = first.TryGetProperty("message", out var m) ? m.GetString() : null;
                    detail = $": {code}{(message != null ? " (" + message + ")" : "")}";
                }
            }
        }
        catch (Exception e) when (e is JsonException or HttpRequestException or IOException) { }
        int status = (int)response.StatusCode;
        var exit = status switch { 404 or 400 or 403 or 401 => ExitCodes.BadInput, _ => ExitCodes.EnvironmentError };
        var text = response.StatusCode switch
        {
            HttpStatusCode.NotFound => $"{Where}: {what}: not found{detail}",
            HttpStatusCode.Forbidden => $"{Where}: {what}: access denied{detail}",
            _ => $"{Where}: {what}: the registry answered {status} {response.ReasonPhrase}{detail}",
        };
        return new TreechunkException(text, exit);
    }

    /// <summary>GET /v2/: reachable, speaking the v2 API; the status tells whether auth is needed.</summary>
    public (HttpStatusCode Status, string? ApiVersion, string? AuthScheme, Uri Base) Ping()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(Base, "v2/"));
        HttpResponseMessage response;
        try
        {
            response = new HttpMessageInvoker(_ctx.Sockets, disposeHandler: false).Send(request, CancellationToken.None);
        }
        catch (HttpRequestException e)
        {
            throw TransportError(e, request);
        }
        using (response)
        {
            var version = response.Headers.TryGetValues("Docker-Distribution-API-Version", out var v) ? v.FirstOrDefault() : null;
            return (response.StatusCode, version, response.Headers.WwwAuthenticate.FirstOrDefault()?.Scheme, Base);
        }
    }

    /// <summary>A manifest or index by tag or digest, whole (at most 4 MiB); null when the registry does not have it.</summary>
    public (byte[] Bytes, string MediaType, string Digest)? GetManifest(string reference)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, Api("manifests/" + reference));
        request.Headers.Accept.ParseAdd(ManifestAccept);
        using var response = Send(request);
        if (response.StatusCode == HttpStatusCode.NotFound) return null;
        if (!response.IsSuccessStatusCode) throw Failure(response, $"manifest {reference}");
        if (response.Content.Headers.ContentLength > MaxManifestSize)
            throw new TreechunkException($"{Where}: manifest {reference} is larger than 4 MiB ({response.Content.Headers.ContentLength} bytes), the most a manifest may have");
        using var body = response.Content.ReadAsStream();
        var buffer = new MemoryStream();
        var chunk = new byte[1 << 16];
        for (int n; (n = body.Read(chunk)) > 0;)
        {
            buffer.Write(chunk, 0, n);
            if (buffer.Length > MaxManifestSize)
                throw new TreechunkException($"{Where}: manifest {reference} is larger than 4 MiB, the most a manifest may have");
        }
        var bytes = buffer.ToArray();
        _ctx.Stats.Received(bytes.Length);
        var digest = Oci.Digest.Sha256(bytes);
        var mediaType = response.Content.Headers.ContentType?.MediaType;
        if (string.IsNullOrEmpty(mediaType) || mediaType is "application/json" or "text/plain")
            mediaType = ImageSources.DescribeManifest(bytes, digest, Where).MediaType;
        if (mediaType == "application/vnd.docker.distribution.manifest.v1+prettyjws" || mediaType == "application/vnd.docker.distribution.manifest.v1+json")
            throw new TreechunkException($"{Where}: manifest {reference} is Docker schema 1, which is not supported (push it again with a current tool)");
        return (bytes, mediaType, digest);
    }

    public bool HasManifest(string digest)
    {
        using var request = new HttpRequestMessage(HttpMethod.Head, Api("manifests/" + digest));
        request.Headers.Accept.ParseAdd(ManifestAccept);
        using var response = Send(request);
        if (response.StatusCode == HttpStatusCode.NotFound) return false;
        if (!response.IsSuccessStatusCode) throw Failure(response, $"manifest {digest}");
        return true;
    }

    public void PutManifest(string reference, string mediaType, byte[] bytes)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, Api("manifests/" + reference)) { Content = new ByteArrayContent(bytes) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
        using var response = Send(request);
        if (!response.IsSuccessStatusCode) throw Failure(response, $"pushing manifest {reference}");
        _ctx.Stats.Sent(bytes.Length);
    }

    /// <summary>HEAD of a blob: its size, or null when the repository does not have it.</summary>
    public long? BlobSize(string digest)
    {
        using var request = new HttpRequestMessage(HttpMethod.Head, Api("blobs/" + digest));
        using var response = Send(request);
        if (response.StatusCode == HttpStatusCode.NotFound) return null;
        if (!response.IsSuccessStatusCode) throw Failure(response, $"blob {digest}");
        return response.Content.Headers.ContentLength;
    }

    /// <summary>
    /// The URL of a blob and the Authorization header that reads it, for a service that fetches
    /// blobs itself (Clair's indexer). A HEAD first, so the registry's challenge is met and a
    /// token for the repository is at hand.
    /// </summary>
    public (Uri Uri, AuthenticationHeaderValue? Authorization) BlobAccess(string digest)
    {
        var uri = Api("blobs/" + digest);
        using var request = new HttpRequestMessage(HttpMethod.Head, uri);
        using var response = Send(request);
        if (!response.IsSuccessStatusCode) throw Failure(response, $"blob {digest}");
        return (uri, _ctx.Auth.CurrentAuthorization(uri));
    }

    /// <summary>A blob (or part of it) as a stream that picks up where a broken connection left it, with Range.</summary>
    public Stream OpenBlob(Descriptor d, long offset = 0, long? length = null) =>
        new ResumingBlobStream(this, d, offset, length ?? d.Size - offset);

    internal HttpResponseMessage GetBlob(Descriptor d, long offset, long length)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, Api("blobs/" + d.Digest));
        if (offset > 0 || length < d.Size) request.Headers.Range = new RangeHeaderValue(offset, offset + length - 1);
        var response = Send(request);
        if (!response.IsSuccessStatusCode)
        {
            using (response) throw response.StatusCode == HttpStatusCode.NotFound
                ? new TreechunkException($"{Where}: blob {d.Digest} is not in the repository", ExitCodes.VerificationFailed)
                : Failure(response, $"blob {d.Digest}");
        }
        return response;
    }

    internal void CountReceived(long n) => _ctx.Stats.Received(n);
    internal void CountResume(string what)
    {
        _ctx.Stats.Resumed();
        _ctx.Log?.Invoke($"resuming {what}");
    }

    /// <summary>
    /// Mounts a blob from another repository of the same registry; true when mounted (201). On
    /// 202 the registry opened an ordinary upload instead, which is returned for use.
    /// </summary>
    public (bool Mounted, Uri? Upload) TryMount(string digest, string fromRepository)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, Api($"blobs/uploads/?mount={Uri.EscapeDataString(digest)}&from={Uri.EscapeDataString(fromRepository)}"));
        request.Options.Set(AuthHandler.ExtraScopes, [$"repository:{fromRepository}:pull"]);
        using (request)
        using (var response = Send(request))
        {
            if (response.StatusCode == HttpStatusCode.Created) return (true, null);
            if (response.StatusCode == HttpStatusCode.Accepted && response.Headers.Location is { } location) return (false, Resolve(location.OriginalString));
            return (false, null);
        }
    }

    /// <summary>
    /// Uploads a blob: one request (POST, then PUT with the body), or with a chunk size as
    /// PATCH chunks that resume from the offset the registry reports after a broken connection,
    /// then PUT ?digest. The registry checks the digest; so does the caller's source.
    /// </summary>
    public void Upload(Descriptor d, BlobContent content, long? chunkSize, Uri? started = null)
    {
        var location = started ?? StartUpload();
        if (chunkSize is not { } chunk || d.Size <= chunk)
        {
            using var put = new HttpRequestMessage(HttpMethod.Put, WithDigest(location, d.Digest)) { Content = new BlobHttpContent(content, 0, d.Size, _ctx.Stats) };
            using var response = Send(put);
            if (response.StatusCode != HttpStatusCode.Created) throw Failure(response, $"uploading blob {d.Digest}");
            return;
        }
        long offset = 0;
        int failures = 0;
        while (offset < d.Size)
        {
            bool gone = false;
            long n = Math.Min(chunk, d.Size - offset);
            var patch = new HttpRequestMessage(HttpMethod.Patch, location) { Content = new BlobHttpContent(content, offset, n, _ctx.Stats) };
            // The distribution API wants "start-end", not HTTP's "bytes start-end/total", so unvalidated.
            patch.Content.Headers.TryAddWithoutValidation("Content-Range", $"{offset}-{offset + n - 1}");
            try
            {
                using (patch)
                using (var response = Send(patch))
                {
                    if (response.StatusCode == HttpStatusCode.Accepted)
                    {
                        location = response.Headers.Location is { } l ? Resolve(l.OriginalString) : location;
                        offset = RangeEnd(response) is { } end ? end + 1 : offset + n;
                        failures = 0;
                        continue;
                    }
                    // 404 once chunks have gone: the registry dropped the upload after a broken
                    // chunk (docker-registry 2.8 does, some time after reporting its offset), so it
                    // starts again. On a first chunk it is a real answer.
                    gone = response.StatusCode == HttpStatusCode.NotFound && (offset > 0 || failures > 0);
                    if (!gone && (int)response.StatusCode < 500 && response.StatusCode != HttpStatusCode.TooManyRequests && response.StatusCode != HttpStatusCode.RequestedRangeNotSatisfiable)
                        throw Failure(response, $"uploading blob {d.Digest}");
                    if (response.Headers.RetryAfter?.Delta is { } wait) Thread.Sleep(wait > TimeSpan.FromSeconds(30) ? TimeSpan.FromSeconds(30) : wait);
                }
            }
            catch (TreechunkException e) when (e.ExitCode == ExitCodes.EnvironmentError && e.InnerException is HttpRequestException or IOException) { }
            if (++failures > 5) throw new TreechunkException($"{Where}: uploading blob {d.Digest} failed 5 times at byte {offset}", ExitCodes.EnvironmentError);
            // Where did the registry get to? Continue from there, not from the start.
            var (resumeAt, newLocation) = gone ? (null, null) : UploadStatus(location);
            if (resumeAt == null)
            {
                location = StartUpload();
                offset = 0;
            }
            else
            {
                location = newLocation ?? location;
                offset = resumeAt.Value;
            }
            CountResume($"upload of {d.Digest} at byte {offset}");
            Thread.Sleep(TimeSpan.FromMilliseconds(200 * failures));
        }
        using var finish = new HttpRequestMessage(HttpMethod.Put, WithDigest(location, d.Digest)) { Content = new ByteArrayContent([]) };
        using var done = Send(finish);
        if (done.StatusCode != HttpStatusCode.Created) throw Failure(done, $"finishing the upload of blob {d.Digest}");
    }

    private Uri StartUpload()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, Api("blobs/uploads/"));
        using var response = Send(request);
        if (response.StatusCode != HttpStatusCode.Accepted || response.Headers.Location is not { } location)
            throw Failure(response, "starting an upload");
        return Resolve(location.OriginalString);
    }

    /// <summary>GET of an upload: the offset to continue from, or null when the registry no longer knows it.</summary>
    private (long? Offset, Uri? Location) UploadStatus(Uri location)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, location);
        using var response = Send(request);
        if (response.StatusCode != HttpStatusCode.NoContent) return (null, null);
        var next = response.Headers.Location is { } l ? Resolve(l.OriginalString) : null;
        // "0-0" is what the registry says for an empty upload.
        return (RangeEnd(response) is { } end && end > 0 ? end + 1 : 0, next);
    }

    private static long? RangeEnd(HttpResponseMessage response)
    {
        if (!response.Headers.TryGetValues("Range", out var values)) return null;
        var range = values.First();
        if (range.StartsWith("bytes=", StringComparison.Ordinal)) range = range[6..];
        int dash = range.IndexOf('-');
        return dash > 0 && long.TryParse(range[(dash + 1)..], out var end) ? end : null;
    }

    private static Uri WithDigest(Uri location, string digest)
    {
        var text = location.ToString();
        return new Uri(text + (text.Contains('?') ? "&" : "?") + "digest=" + Uri.EscapeDataString(digest));
    }

    /// <summary>
    /// The OCI 1.1 referrers of a manifest (GET /v2/NAME/referrers/DIGEST) as an index, or null
    /// when the registry has no referrers API (404), where the referrers tag scheme stands in.
    /// </summary>
    public ImageIndex? Referrers(string digest)
    {
        Oci.Digest.Hex(digest);
        using var request = new HttpRequestMessage(HttpMethod.Get, Api("referrers/" + digest));
        request.Headers.Accept.ParseAdd(MediaTypes.ImageIndex);
        using var response = Send(request);
        if (response.StatusCode == HttpStatusCode.NotFound) return null;
        if (!response.IsSuccessStatusCode) throw Failure(response, $"referrers of {digest}");
        var body = response.Content.ReadAsByteArrayAsync().GetAwaiter().GetResult();
        if (body.Length > MaxManifestSize) throw new TreechunkException($"{Where}: the referrers of {digest} are larger than 4 MiB");
        _ctx.Stats.Received(body.Length);
        return OciJson.Deserialize<ImageIndex>(body, $"{Where}: referrers of {digest}");
    }

    /// <summary>Every tag, following the Link header's pages of <paramref name="pageSize"/> tags.</summary>
    public List<string> Tags(int pageSize = 1000)
    {
        var tags = new List<string>();
        var next = Api($"tags/list?n={pageSize}");
        for (int pages = 0; next != null && pages < 10_000; pages++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, next);
            using var response = Send(request);
            if (!response.IsSuccessStatusCode) throw Failure(response, "listing tags");
            var body = response.Content.ReadAsByteArrayAsync().GetAwaiter().GetResult();
            using (var doc = JsonDocument.Parse(body))
                if (doc.RootElement.TryGetProperty("tags", out var t) && t.ValueKind == JsonValueKind.Array)
                    tags.AddRange(t.EnumerateArray().Select(x => x.GetString()).OfType<string>());
            next = null;
            if (response.Headers.TryGetValues("Link", out var links))
                foreach (var link in links)
                {
                    // <url>; rel="next"
                    int lt = link.IndexOf('<'), gt = link.IndexOf('>');
                    if (lt >= 0 && gt > lt && link.Contains("rel=\"next\"", StringComparison.Ordinal)) next = Resolve(link[(lt + 1)..gt]);
                }
        }
        return tags;
    }

    /// <summary>A request body read from a blob's content at each send, so a retry sends it again.</summary>
    private sealed class BlobHttpContent : HttpContent
    {
        private readonly BlobContent _content;
        private readonly long _offset, _length;
        private readonly RegistryStats _stats;

        public BlobHttpContent(BlobContent content, long offset, long length, RegistryStats stats)
        {
            _content = content;
            _offset = offset;
            _length = length;
            _stats = stats;
            Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            Headers.ContentLength = length;
        }

        protected override void SerializeToStream(Stream stream, TransportContext? context, CancellationToken cancellationToken) => Copy(stream);

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => Task.Run(() => Copy(stream));

        private void Copy(Stream stream)
        {
            using var source = _content.Open(_offset);
            var buffer = new byte[1 << 17];
            long left = _length;
            while (left > 0)
            {
                int n = source.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
                if (n == 0) throw new IOException($"blob content ended {left} bytes early");
                stream.Write(buffer, 0, n);
                _stats.Sent(n);
                left -= n;
            }
        }

        protected override bool TryComputeLength(out long length)
        {
            length = _length;
            return true;
        }
    }
}

/// <summary>A blob download that continues with a Range request when the connection breaks mid-body.</summary>
internal sealed class ResumingBlobStream(RegistryClient client, Descriptor d, long offset, long length) : ReadOnlyStream
{
    private const int MaxResumes = 5;
    private HttpResponseMessage? _response;
    private Stream? _body;
    private long _read;
    private int _resumes;

    public override int Read(Span<byte> buffer)
    {
        if (_read >= length || buffer.IsEmpty) return 0;
        if (buffer.Length > length - _read) buffer = buffer[..(int)(length - _read)];
        while (true)
        {
            try
            {
                if (_body == null)
                {
                    _response = client.GetBlob(d, offset + _read, length - _read);
                    _body = _response.Content.ReadAsStream();
                    // A registry that ignores Range sends the whole blob: skip to where we are.
                    if (_response.StatusCode == System.Net.HttpStatusCode.OK && offset + _read > 0)
                        for (long skip = offset + _read; skip > 0;)
                        {
                            var scratch = new byte[(int)Math.Min(1 << 16, skip)];
                            int got = _body.Read(scratch);
                            if (got == 0) throw new IOException("the connection closed while skipping to the resume offset");
                            skip -= got;
                        }
                }
                int n = _body.Read(buffer);
                if (n == 0) throw new IOException($"the connection closed after {offset + _read} of {offset + length} bytes");
                _read += n;
                client.CountReceived(n);
                return n;
            }
            catch (Exception e) when (e is IOException or HttpRequestException && _resumes < MaxResumes)
            {
                DropResponse();
                _resumes++;
                client.CountResume($"download of {d.Digest} at byte {offset + _read}");
            }
        }
    }

    private void DropResponse()
    {
        _body?.Dispose();
        _response?.Dispose();
        _body = null;
        _response = null;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) DropResponse();
        base.Dispose(disposing);
    }
}
