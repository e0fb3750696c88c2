using System.IO.MemoryMappedFiles;

namespace Treechunk.IO;

/// <summary>
/// A file mapped read-only into memory, for APIs that need a whole buffer at a fixed address (a
/// zstd patch's prefix): the pages come from the page cache and are not on the managed heap, so
/// a large old layer costs address space and page cache, not GC heap.
/// </summary>
public sealed unsafe class MappedFile : IDisposable
{
    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly byte* _pointer;

    public long Length { get; }

    /// <summary>The first byte (null for an empty file, which cannot be mapped).</summary>
    public byte* Pointer => _pointer;

    private MappedFile(MemoryMappedFile? map, MemoryMappedViewAccessor? view, byte* pointer, long length)
    {
        _map = map;
        _view = view;
        _pointer = pointer;
        Length = length;
    }

    public static MappedFile Open(string path)
    {
        long length = new FileInfo(path).Length;
        if (length == 0) return new MappedFile(null, null, null, 0);
        var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        try
        {
            var view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            byte* p = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            return new MappedFile(map, view, p + view.PointerOffset, length);
        }
        catch
        {
            map.Dispose();
            throw;
        }
    }

    public ReadOnlySpan<byte> Span => _pointer == null ? default : new ReadOnlySpan<byte>(_pointer, checked((int)Math.Min(Length, int.MaxValue)));

    public void Dispose()
    {
        if (_view != null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }
        _map?.Dispose();
    }
}
