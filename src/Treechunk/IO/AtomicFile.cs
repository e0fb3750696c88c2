namespace Treechunk.IO;

/// <summary>
/// A file that appears under its final name only when complete: written under a temp name in the
/// same directory (so the rename is atomic) and renamed at <see cref="Commit"/>; disposed without
/// a commit, the temp file is deleted. Every "write then rename" in the library goes through here,
/// so an interrupted run never leaves a half-written file under a name that looks valid.
/// </summary>
public sealed class AtomicFile : IDisposable
{
    /// <summary>Temp names start with this, so readers of a directory (oci-archive packing) can skip leftovers.</summary>
    public const string TempPrefix = ".tmp-";

    private readonly string _temp;
    private bool _done;

    public string TempPath => _temp;
    public FileStream Stream { get; }

    private AtomicFile(string temp, FileStream stream)
    {
        _temp = temp;
        Stream = stream;
    }

    /// <summary>A new temp file in <paramref name="directory"/>, for content whose final name is known only at the end (a blob named by its digest).</summary>
    /// <param name="mode">The file's mode from its creation on (a private key must never exist readable by others, not even under its temp name); default: the umask's.</param>
    public static AtomicFile CreateIn(string directory, string purpose = "file", UnixFileMode? mode = null)
    {
        var temp = Path.Join(directory, $"{TempPrefix}{purpose}-{Guid.NewGuid():N}");
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None, BufferSize = 1 << 16 };
        if (mode is { } m && !OperatingSystem.IsWindows()) options.UnixCreateMode = m;
        return new AtomicFile(temp, new FileStream(temp, options));
    }

    /// <summary>A new temp file beside <paramref name="path"/>.</summary>
    public static AtomicFile Create(string path, UnixFileMode? mode = null) =>
        CreateIn(Path.GetDirectoryName(Path.GetFullPath(path))!, Path.GetFileName(path), mode);

    /// <summary>Closes the file and renames it to <paramref name="path"/>, replacing what is there.</summary>
    public void Commit(string path)
    {
        Stream.Dispose();
        File.Move(_temp, path, overwrite: true);
        _done = true;
    }

    /// <summary>
    /// Closes the file and gives it a content-addressed name: when a file of that name exists it
    /// holds the same bytes by construction, so the temp file is dropped instead.
    /// </summary>
    public void CommitContentAddressed(string path)
    {
        Stream.Dispose();
        if (File.Exists(path)) File.Delete(_temp);
        else File.Move(_temp, path);
        _done = true;
    }

    public void Dispose()
    {
        Stream.Dispose();
        if (_done) return;
        try { File.Delete(_temp); }
        catch (IOException) { /* a leftover temp file is harmless and skipped by readers */ }
    }

    /// <summary>Writes <paramref name="data"/> to <paramref name="path"/> atomically.</summary>
    public static void Write(string path, ReadOnlySpan<byte> data)
    {
        using var file = Create(path);
        file.Stream.Write(data);
        file.Commit(path);
    }

    public static void WriteText(string path, string text) => Write(path, System.Text.Encoding.UTF8.GetBytes(text));

    /// <summary>Places a copy of <paramref name="source"/> at <paramref name="target"/>: a hardlink when both share a filesystem, else a copy; readers never see half a file.</summary>
    public static void PlaceCopy(string source, string target)
    {
        var temp = Path.Join(Path.GetDirectoryName(Path.GetFullPath(target))!, $"{TempPrefix}{Path.GetFileName(target)}-{Guid.NewGuid():N}");
        try
        {
            if (!Posix.LibC.TryLink(source, temp)) File.Copy(source, temp);
            File.Move(temp, target, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}
