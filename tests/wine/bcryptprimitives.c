/* A stand-in for Windows' bcryptprimitives.dll, for running the agent
 * under Wine older than 8.13 (Debian 12 ships 8.0) in tests only: Rust's
 * standard library (1.78+) takes its random bytes from ProcessPrng there,
 * which Windows 10 / Server 2016 and later have. Never shipped. */
#include <windows.h>
#include <bcrypt.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (BCryptGenRandom(NULL, data, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0)
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
