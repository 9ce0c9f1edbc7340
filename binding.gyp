# Shoal's own HNSW addon (native/hnsw-graph.cc, src/index/native-graph.ts). It compiles hnswlib's
# headers from the installed hnswlib-node package, with exactly the flags of hnswlib-node's own
# binding.gyp (no -march): the two compute bit-identical distances and read and write each
# other's graph files. Keep this file in step with node_modules/hnswlib-node/binding.gyp.
{
  "targets": [
    {
      "target_name": "shoal_hnsw",
      "sources": [ "native/hnsw-graph.cc" ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!(node -p \"require('path').join(require('path').dirname(require.resolve('hnswlib-node/package.json')), 'src')\")"
      ],
      "defines": [ "NAPI_DISABLE_CPP_EXCEPTIONS" ],
      "cflags!": [ "-fno-exceptions" ],
      "cflags_cc!": [ "-fno-exceptions" ],
      "conditions": [
        ["OS=='win'", {
          "defines": [
            "_HAS_EXCEPTIONS=1"
          ],
          "msvs_settings": {
            "VCCLCompilerTool": {
              "ExceptionHandling": 1
            },
          },
        }],
        ["OS=='mac'", {
          "cflags+": [ "-fvisibility=hidden" ],
          "xcode_settings": {
            "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
            "GCC_SYMBOLS_PRIVATE_EXTERN": "YES"
          }
        }]
      ]
    }
  ]
}
