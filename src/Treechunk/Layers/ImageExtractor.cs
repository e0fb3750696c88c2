using Treechunk.IO;
using Treechunk.Oci;
using Treechunk.Posix;
using Treechunk.Trees;

namespace Treechunk.Layers;

/// <summary>Writes an image's flattened filesystem to a real directory (<c>oci extract</c>).</summary>
public static class ImageExtractor
{
    /// <param name="targetDir">Must be absent or an empty directory.</param>
    /// <param name="warn">Receives one line per kind of thing that could not be reproduced (owners and devices when not root, SELinux labels).</param>
    public static void Extract(Image image, string targetDir, Action<string>? warn)
    {
        targetDir = Path.GetFullPath(targetDir);
        if (File.Exists(targetDir) || (Directory.Exists(targetDir) && LibC.LStat(targetDir).IsSymlink))
            throw new TreechunkException($"extract target {targetDir} exists and is not a directory");
        if (Directory.Exists(targetDir) && Directory.EnumerateFileSystemEntries(targetDir).Any())
            throw new TreechunkException($"extract target {targetDir} is not empty");
        var parent = Path.GetDirectoryName(targetDir)!;
        try
        {
            Directory.CreateDirectory(parent);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TreechunkException($"cannot create extract target {targetDir}: {e.Message}", ExitCodes.EnvironmentError);
        }

        // Unpack beside the target and rename at the end, so a failed or interrupted extraction
        // never leaves a directory that looks like a complete rootfs.
        var staging = Path.Join(parent, $".{Path.GetFileName(targetDir)}.treechunk-{Guid.NewGuid():N}");
        try
        {
            Directory.CreateDirectory(staging);
            var sink = new DiskSink(staging, warn);
            var applier = new LayerApplier(sink, warn);
            foreach (var layer in image.Layers) applier.ApplyLayer(layer);
            sink.Finish(applier.Snapshot());
            if (Directory.Exists(targetDir)) Directory.Delete(targetDir);
            Directory.Move(staging, targetDir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TreechunkException($"cannot extract into {targetDir}: {e.Message}", ExitCodes.EnvironmentError);
        }
        finally
        {
            TempDirectory.RemoveTree(staging);
        }
    }

    /// <summary>
    /// Carries out the applier's steps on disk. Files get their metadata as soon as they are
    /// written; directories get theirs at the end, deepest first, because writing into a
    /// directory changes its mtime and a read-only mode would stop us writing into it.
    /// </summary>
    private sealed class DiskSink(string root, Action<string>? warn) : ILayerSink
    {
        private readonly bool _isRoot = LibC.IsRoot;
        private bool _warnedOwner, _warnedDevice, _warnedSelinux, _warnedXattr;

        private string Full(string path) => Path.Join(root, path);

        public void CreateDirectory(string path, LayerInode dir)
        {
            var full = Full(path);
            Io(() => LibC.MkDir(full, 0b111_000_000));
        }

        public void WriteFile(string path, LayerInode file, Stream content)
        {
            var full = Full(path);
            try
            {
                // O_EXCL also refuses a symlink planted at the final component. Runs of zeros
                // become holes, as cp --sparse=auto makes them: a sparse 1 GB file stays small.
                using var fs = PosixFileStream.CreateNew(full, 0b110_000_000, sparse: true);
                content.CopyTo(fs, 1 << 16);
            }
            catch (IOException e)
            {
                throw new TreechunkException($"cannot write {FileNames.Display(full)}: {e.Message}", ExitCodes.EnvironmentError, e);
            }
            ApplyMetadata(full, file.Meta);
        }

        public void CreateHardlink(string path, string existingPath, LayerInode inode)
        {
            var full = Full(path);
            if (inode.Meta.Type is EntryType.CharDevice or EntryType.BlockDevice && !_isRoot) return;
            Io(() => LibC.Link(Full(existingPath), full));
        }

        public void CreateSpecial(string path, LayerInode inode)
        {
            var full = Full(path);
            var m = inode.Meta;
            try
            {
                switch (m.Type)
                {
                    case EntryType.Symlink:
                        LibC.Symlink(m.LinkTarget!, full);
                        break;
                    case EntryType.Fifo:
                        LibC.MkNod(full, LibC.EntryKind.Fifo, 0b110_000_000, 0, 0);
                        break;
                    default:
                        if (!_isRoot)
                        {
                            if (!_warnedDevice)
                                warn?.Invoke("not running as root: device nodes are not created (first: " + path + ")");
                            _warnedDevice = true;
                            return;
                        }
                        LibC.MkNod(full, m.Type == EntryType.CharDevice ? LibC.EntryKind.Char : LibC.EntryKind.Block,
                            0b110_000_000, m.DevMajor, m.DevMinor);
                        break;
                }
            }
            catch (IOException e)
            {
                throw new TreechunkException(e.Message, ExitCodes.EnvironmentError, e);
            }
            ApplyMetadata(full, m);
        }

        public void Remove(string path, LayerInode inode, bool lastLink)
        {
            var full = Full(path);
            // A device node skipped for want of root was never created.
            if (inode.Meta.Type is EntryType.CharDevice or EntryType.BlockDevice && !_isRoot) return;
            Io(() =>
            {
                if (inode.Meta.Type == EntryType.Directory) LibC.RmDir(full);
                else LibC.Unlink(full);
            });
        }

        public void Finish(IReadOnlyList<(string Path, LayerInode Inode)> entries)
        {
            // Descending ordinal order puts every path before its parent.
            foreach (var (path, inode) in entries.Where(e => e.Inode.Meta.Type == EntryType.Directory)
                         .OrderByDescending(e => e.Path, StringComparer.Ordinal))
                ApplyMetadata(Full(path), inode.Meta);
        }

        /// <summary>Order matters: chown clears setuid bits and file capabilities, so it goes first and xattrs last but mtime.</summary>
        private void ApplyMetadata(string full, TreeEntry m)
        {
            try
            {
                if (_isRoot) LibC.LChown(full, m.Uid, m.Gid);
                else if (!_warnedOwner)
                {
                    warn?.Invoke("not running as root: file owners are not set");
                    _warnedOwner = true;
                }
                if (m.Type != EntryType.Symlink) LibC.Chmod(full, m.Mode);
            }
            catch (IOException e)
            {
                throw new TreechunkException(e.Message, ExitCodes.EnvironmentError, e);
            }
            foreach (var (name, value) in m.Xattrs)
            {
                try
                {
                    LibC.SetXattr(full, name, value);
                }
                catch (IOException e)
                {
                    if (name == "security.selinux")
                    {
                        if (!_warnedSelinux) warn?.Invoke($"cannot set SELinux labels, skipping them ({e.Message})");
                        _warnedSelinux = true;
                    }
                    else if (!_isRoot && !name.StartsWith("user.", StringComparison.Ordinal))
                    {
                        if (!_warnedXattr) warn?.Invoke($"not running as root: privileged xattrs are not set ({e.Message})");
                        _warnedXattr = true;
                    }
                    else throw new TreechunkException(e.Message, ExitCodes.EnvironmentError, e);
                }
            }
            Io(() => LibC.SetMTime(full, m.MTime));
        }

        private static void Io(Action a)
        {
            try
            {
                a();
            }
            catch (IOException e)
            {
                throw new TreechunkException(e.Message, ExitCodes.EnvironmentError, e);
            }
        }
    }
}
