using Treechunk.IO;
using Treechunk.Tar;
using Treechunk.Trees;

namespace Treechunk.Oci;

/// <summary>
/// An oci-archive (an OCI layout packed as one tar) read in place: one pass over the tar headers
/// finds where each member's bytes are, skipping the content by seeking; blobs are then read
/// straight from their offsets. Nothing is unpacked, so looking at a multi-gigabyte archive reads
/// only its index, manifest and config.
/// </summary>
public sealed class OciArchiveSource : IImageSource
{
    private readonly string _file;
    private readonly Dictionary<string, (long Offset, long Size)> _members;
    public ImageIndex Index { get; }
    public string Name => "oci-archive:" + _file;

    private OciArchiveSource(string file, Dictionary<string, (long, long)> members, ImageIndex index)
    {
        _file = file;
        _members = members;
        Index = index;
    }

    /// <summary>The archive's regular members (normalised paths) and where their content lies.</summary>
    public IReadOnlyDictionary<string, (long Offset, long Size)> Members => _members;

    public static OciArchiveSource Open(string file)
    {
        if (Directory.Exists(file)) throw new TreechunkException($"{file} is a directory, not an oci-archive (use oci:{file})");
        if (!File.Exists(file)) throw new TreechunkException($"{file}: no such oci-archive file");
        Dictionary<string, (long, long)> members;
        try
        {
            members = ScanMembers(file);
        }
        catch (TreechunkException e)
        {
            throw new TreechunkException($"{file} is not a readable oci-archive: {e.Message}");
        }
        catch (IOException e)
        {
            throw new TreechunkException($"cannot read oci-archive {file}: {e.Message}", ExitCodes.EnvironmentError);
        }
        var archive = new OciArchiveSource(file, members, new ImageIndex());
        if (!members.ContainsKey(OciLayout.LayoutFile)) throw new TreechunkException($"{file} is not an oci-archive (no oci-layout inside)");
        OciLayout.CheckLayoutFile(archive.ReadMember(OciLayout.LayoutFile), $"{file}: {OciLayout.LayoutFile}");
        if (!members.ContainsKey(OciLayout.IndexFile)) throw new TreechunkException($"{file} is not a complete oci-archive (no index.json inside)");
        var index = OciJson.Deserialize<ImageIndex>(archive.ReadMember(OciLayout.IndexFile), $"{file}: {OciLayout.IndexFile}");
        return new OciArchiveSource(file, members, index);
    }

    /// <summary>True when the file is a tar with an oci-layout member.</summary>
    public static bool LooksLikeArchive(string file)
    {
        try
        {
            return ScanMembers(file).ContainsKey(OciLayout.LayoutFile);
        }
        catch (Exception e) when (e is IOException or TreechunkException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static Dictionary<string, (long, long)> ScanMembers(string file)
    {
        var members = new Dictionary<string, (long, long)>(StringComparer.Ordinal);
        using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 12);
        using var reader = new TarReader(stream, file, leaveOpen: true);
        while (reader.Next() is { } e)
        {
            if (e.Type != TarEntryType.Regular) continue;
            if (TreePaths.Normalize(e.Path) is { Length: > 0 } path) members[path] = (e.DataOffset, e.Size);
        }
        return members;
    }

    private byte[] ReadMember(string name)
    {
        var (offset, size) = _members[name];
        if (size > ImageSources.MaxMetadataSize) throw new TreechunkException($"{_file}: {name} is implausibly large ({size} bytes)");
        using var s = OpenAt(offset, size);
        var bytes = new byte[size];
        s.ReadExactly(bytes);
        return bytes;
    }

    private Stream OpenAt(long offset, long length)
    {
        var stream = new FileStream(_file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        stream.Seek(offset, SeekOrigin.Begin);
        return new BoundedStream(stream, length);
    }

    public bool HasBlob(string digest) => _members.ContainsKey(OciLayout.BlobMember(digest));

    public Descriptor Resolve(string? tag, string? digest) =>
        OciLayout.Resolve(Index, tag, digest, _file, d => _members.TryGetValue(OciLayout.BlobMember(d.Digest), out var m) && m.Size <= ImageSources.MaxMetadataSize
            ? ReadMember(OciLayout.BlobMember(d.Digest)) : null);

    public byte[] ReadManifest(Descriptor d) =>
        VerifyingStream.ReadAll(OpenBlob(d), d, MediaTypes.IsIndex(d.MediaType) ? "index" : "manifest", ImageSources.MaxMetadataSize);

    public Stream OpenBlob(Descriptor d)
    {
        if (!_members.TryGetValue(OciLayout.BlobMember(d.Digest), out var m))
            throw new TreechunkException($"blob {d.Digest} is missing from {_file}", ExitCodes.VerificationFailed);
        return OpenAt(m.Offset, m.Size);
    }

    public Stream OpenBlobRange(Descriptor d, long offset, long length)
    {
        if (!_members.TryGetValue(OciLayout.BlobMember(d.Digest), out var m))
            throw new TreechunkException($"blob {d.Digest} is missing from {_file}", ExitCodes.VerificationFailed);
        if (offset < 0 || length < 0 || offset + length > m.Size)
            throw new TreechunkException($"range {offset}+{length} is outside blob {d.Digest} ({m.Size} bytes)");
        return OpenAt(m.Offset + offset, length);
    }

    public void Dispose() { }
}

/// <summary>
/// Writes an oci-archive: new blobs go to a staging layout beside the target; at the commit the
/// archive is packed deterministically (sorted members, fixed owners, modes and times) into a
/// temp file that is renamed over the target. Writing into an existing archive keeps its images:
/// its blobs are copied from their offsets in the old file, never unpacked.
/// </summary>
public sealed class OciArchiveDestination : IImageDestination
{
    private readonly string _file;
    private readonly TempDirectory _staging;
    private readonly OciLayoutDestination _layout;
    private readonly OciArchiveSource? _existing;
    private readonly List<OciLayout.TagChange> _tags = [];
    public string Name => "oci-archive:" + _file;

    private OciArchiveDestination(string file, TempDirectory staging, OciArchiveSource? existing)
    {
        _file = file;
        _staging = staging;
        _existing = existing;
        _layout = OciLayoutDestination.OpenOrCreate(staging.Path, force: false);
    }

    /// <summary>An existing archive gets the new image added (its other images kept); anything else at the path is refused unless <paramref name="force"/>.</summary>
    public static OciArchiveDestination OpenOrCreate(string file, bool force)
    {
        var parent = Path.GetDirectoryName(Path.GetFullPath(file))!;
        if (!Directory.Exists(parent)) throw new TreechunkException($"output directory {parent} does not exist");
        if (Directory.Exists(file)) throw new TreechunkException($"output {file} is a directory, not an oci-archive file");
        OciArchiveSource? existing = null;
        if (File.Exists(file) && !force)
        {
            if (!OciArchiveSource.LooksLikeArchive(file))
                throw new TreechunkException($"output {file} exists and is not an oci-archive (use --force to replace it)");
            existing = OciArchiveSource.Open(file);
        }
        return new OciArchiveDestination(file, TempDirectory.Create("archive", parent), existing);
    }

    public bool HasBlob(Descriptor d) => _layout.HasBlob(d) || _existing?.HasBlob(d.Digest) == true;

    public void PutBlob(Descriptor d, BlobContent content)
    {
        if (_existing?.HasBlob(d.Digest) != true) _layout.PutBlob(d, content);
    }

    public IBlobWriter CreateBlob() => _layout.CreateBlob();

    public void PutManifest(Descriptor d, ReadOnlySpan<byte> raw)
    {
        if (_existing?.HasBlob(d.Digest) != true) _layout.PutManifest(d, raw);
    }

    public void Tag(Descriptor d, string? tag) => _tags.Add(new OciLayout.TagChange(d, tag));

    public void Commit()
    {
        var index = _existing?.Index ?? new ImageIndex();
        OciLayout.ApplyTags(index, _tags);
        _tags.Clear();
        var indexBytes = OciJson.Serialize(index);

        // Every member with where its bytes come from: the staging layout or the old archive.
        var files = new SortedDictionary<string, Func<Stream>>(StringComparer.Ordinal)
        {
            [OciLayout.LayoutFile] = () => new MemoryStream(OciLayout.LayoutFileContent),
            [OciLayout.IndexFile] = () => new MemoryStream(indexBytes),
        };
        var sizes = new Dictionary<string, long>(StringComparer.Ordinal)
        {
            [OciLayout.LayoutFile] = OciLayout.LayoutFileContent.Length,
            [OciLayout.IndexFile] = indexBytes.Length,
        };
        if (_existing != null)
            foreach (var (name, (_, size)) in _existing.Members)
            {
                if (!name.StartsWith("blobs/", StringComparison.Ordinal)) continue;
                var member = name;
                files[member] = () => _existing.OpenBlob(new Descriptor { Digest = "sha256:" + member[(member.LastIndexOf('/') + 1)..], Size = size });
                sizes[member] = size;
            }
        foreach (var path in Directory.EnumerateFiles(_layout.BlobsDir))
        {
            var name = Path.GetFileName(path);
            if (name.StartsWith(AtomicFile.TempPrefix, StringComparison.Ordinal)) continue;
            files["blobs/sha256/" + name] = () => File.OpenRead(path);
            sizes["blobs/sha256/" + name] = new FileInfo(path).Length;
        }

        using var output = AtomicFile.Create(_file);
        using (var tar = new PaxTarWriter(output.Stream, 0))
        {
            var dirs = new SortedSet<string>(files.Keys.SelectMany(TreePaths.Ancestors), StringComparer.Ordinal);
            foreach (var path in dirs.Concat(files.Keys).OrderBy(p => p, StringComparer.Ordinal))
            {
                if (dirs.Contains(path))
                {
                    tar.Write(new TreeEntry { Path = path, Type = EntryType.Directory, Mode = 0x1ED }, null);
                    continue;
                }
                using var content = files[path]();
                tar.Write(new TreeEntry { Path = path, Type = EntryType.Regular, Mode = 0x1A4, Size = sizes[path] }, content);
            }
            tar.Finish();
        }
        output.Commit(_file);
    }

    public void Dispose()
    {
        _existing?.Dispose();
        _staging.Dispose();
    }
}
