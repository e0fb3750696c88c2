using System.Formats.Tar;
using Treechunk.Tar;
using Treechunk.Trees;

namespace Treechunk.Oci;

/// <summary>
/// oci-archive: an OCI layout packed as one tar. Reading unpacks it into a private temp
/// directory (blobs are streamed, never held in memory); writing packs a finished layout
/// deterministically into a temp file that is renamed over the target.
/// </summary>
public static class OciArchive
{
    public static bool LooksLikeArchive(string file)
    {
        try
        {
            using var s = File.OpenRead(file);
            using var reader = new System.Formats.Tar.TarReader(s);
            for (int i = 0; i < 10_000 && reader.GetNextEntry() is { } e; i++)
                if (TreePaths.Normalize(e.Name) == "oci-layout") return true;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or FormatException or ArgumentException) { }
        return false;
    }

    /// <summary>Unpacks an archive into a new temp directory and returns it.</summary>
    public static TempDirectory Unpack(string file)
    {
        if (!File.Exists(file)) throw new TreechunkException($"{file}: no such oci-archive file");
        var dir = TempDirectory.Create("oci-archive");
        try
        {
            using var s = File.OpenRead(file);
            TarFile.ExtractToDirectory(s, dir.Path, overwriteFiles: true);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or FormatException or ArgumentException or UnauthorizedAccessException)
        {
            dir.Dispose();
            throw new TreechunkException($"{file} is not a readable oci-archive: {e.Message.Split('\n')[0]}");
        }
        if (!OciLayout.LooksLikeLayout(dir.Path))
        {
            dir.Dispose();
            throw new TreechunkException($"{file} is not an oci-archive (no oci-layout inside)");
        }
        return dir;
    }

    /// <summary>Packs a layout directory into <paramref name="file"/> atomically, in a fixed order with fixed metadata.</summary>
    public static void Pack(string layoutDir, string file)
    {
        var temp = file + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            using (var output = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            using (var tar = new PaxTarWriter(output, 0))
            {
                var files = Directory.EnumerateFiles(layoutDir, "*", SearchOption.AllDirectories)
                    .Select(f => Path.GetRelativePath(layoutDir, f).Replace('\\', '/'))
                    .Where(f => !Path.GetFileName(f).StartsWith(".tmp-", StringComparison.Ordinal))
                    .OrderBy(f => f, StringComparer.Ordinal).ToList();
                var dirs = new SortedSet<string>(files.SelectMany(TreePaths.Ancestors), StringComparer.Ordinal);
                foreach (var path in dirs.Concat(files).OrderBy(p => p, StringComparer.Ordinal))
                {
                    var full = Path.Join(layoutDir, path);
                    if (dirs.Contains(path))
                        tar.Write(new TreeEntry { Path = path, Type = EntryType.Directory, Mode = 0x1ED }, null);
                    else
                    {
                        using var content = File.OpenRead(full);
                        tar.Write(new TreeEntry { Path = path, Type = EntryType.Regular, Mode = 0x1A4, Size = content.Length }, content);
                    }
                }
                tar.Finish();
            }
            File.Move(temp, file, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}

/// <summary>A private temp directory deleted on dispose.</summary>
public sealed class TempDirectory : IDisposable
{
    public string Path { get; }

    private TempDirectory(string path) => Path = path;

    public static TempDirectory Create(string purpose, string? near = null)
    {
        var parent = near ?? System.IO.Path.GetTempPath();
        var path = System.IO.Path.Join(parent, $".treechunk-{purpose}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(path);
        return new TempDirectory(path);
    }

    public void Dispose()
    {
        try { if (Directory.Exists(Path)) Directory.Delete(Path, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
