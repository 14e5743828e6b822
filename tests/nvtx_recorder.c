/* A minimal NVTX tool (the injection interface Nsight Systems and Nsight
 * Compute use): loaded by any NVTX-annotated process that has
 * NVTX_INJECTION64_PATH pointing at this library, it appends one line per
 * push/pop range event to the file named by TRTPERF_NVTX_LOG:
 *
 *     push<TAB>domain<TAB>message
 *     pop<TAB>domain
 *
 * Writes are unbuffered appends (O_APPEND), so a test's own appends to the
 * same file from the same thread interleave in call order. The NVTX types
 * are declared here from the public NVTX v3 headers (nvToolsExt.h,
 * nvtxDetail/nvtxTypes.h) so the library builds with a plain C compiler.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef void (*NvtxFunctionPointer)(void);
typedef NvtxFunctionPointer **NvtxFunctionTable;
typedef struct {
    size_t struct_size;
    int (*GetModuleFunctionTable)(int module, NvtxFunctionTable *out_table, unsigned int *out_size);
} NvtxExportTableCallbacks;
typedef const void *(*NvtxGetExportTableFunc_t)(uint32_t export_table_id);

typedef struct {
    uint16_t version;
    uint16_t size;
    uint32_t category;
    int32_t color_type;
    uint32_t color;
    int32_t payload_type;
    int32_t reserved0;
    union { uint64_t u; int64_t i; double d; } payload;
    int32_t message_type;
    union { const char *ascii; const void *unicode; const void *registered; } message;
} EventAttributes;

enum { ETID_CALLBACKS = 1, MODULE_CORE2 = 5 };
enum { CBID_PUSH = 4, CBID_POP = 5, CBID_REGISTER_STRING_A = 10, CBID_DOMAIN_CREATE_A = 12 };
enum { MESSAGE_ASCII = 1, MESSAGE_REGISTERED = 3 };

static int log_fd = -1;

static void emit(const char *a, const char *b, const char *c) {
    char line[4096];
    size_t n = 0;
    const char *parts[3] = {a, b, c};
    for (int i = 0; i < 3 && parts[i] != NULL; i++) {
        if (i > 0 && n < sizeof line - 1) line[n++] = '\t';
        for (const char *p = parts[i]; *p && n < sizeof line - 1; p++) line[n++] = (*p == '\n') ? ' ' : *p;
    }
    line[n++] = '\n';
    if (log_fd >= 0 && write(log_fd, line, n) < 0) { /* nothing to do: the test sees the gap */ }
}

/* A domain handle and a registered-string handle are both pointers to a copy of the name. */
static const char *name_of(const void *domain) { return domain != NULL ? (const char *)domain : "(default)"; }

static const void *domain_create(const char *name) { return strdup(name != NULL ? name : ""); }

static const void *register_string(const void *domain, const char *string) {
    (void)domain;
    return strdup(string != NULL ? string : "");
}

static int push(const void *domain, const EventAttributes *attr) {
    const char *message = "";
    if (attr != NULL && attr->message_type == MESSAGE_ASCII && attr->message.ascii != NULL) message = attr->message.ascii;
    if (attr != NULL && attr->message_type == MESSAGE_REGISTERED && attr->message.registered != NULL)
        message = (const char *)attr->message.registered;
    emit("push", name_of(domain), message);
    return 0;
}

static int pop(const void *domain) {
    emit("pop", name_of(domain), NULL);
    return 0;
}

int InitializeInjectionNvtx2(NvtxGetExportTableFunc_t get_export_table) {
    const char *path = getenv("TRTPERF_NVTX_LOG");
    if (path == NULL) return 0;
    log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
    const NvtxExportTableCallbacks *callbacks = (const NvtxExportTableCallbacks *)get_export_table(ETID_CALLBACKS);
    NvtxFunctionTable table = NULL;
    unsigned int size = 0;
    if (log_fd < 0 || callbacks == NULL || !callbacks->GetModuleFunctionTable(MODULE_CORE2, &table, &size)
        || size <= CBID_DOMAIN_CREATE_A)
        return 0;
    *table[CBID_PUSH] = (NvtxFunctionPointer)push;
    *table[CBID_POP] = (NvtxFunctionPointer)pop;
    *table[CBID_REGISTER_STRING_A] = (NvtxFunctionPointer)register_string;
    *table[CBID_DOMAIN_CREATE_A] = (NvtxFunctionPointer)domain_create;
    return 1;
}
