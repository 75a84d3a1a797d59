"""Derive the float32 polynomial of fastbp/fastmath.py's exp and print the fit's error.

(float64's exp uses a Padé approximant whose coefficients are exact fractions, computed in
fastmath itself: ``pade_exp_coefficients``.)

    pip install mpmath && python scripts/derive_exp_polynomial.py

e**r − 1 = r + r²·q(r) on |r| ≤ R, with q a Chebyshev fit (near-minimax) of (e**r − 1 − r)/r²
at 40 significant digits; the error printed is max |r²·(q_fit − q)| over the interval, in
absolute terms (e**r is about 1 there, so 1.1e-16 is one float64 ulp, 6e-8 one float32 ulp).
R has a small margin over the exact bound because r is computed with rounding.
"""

import mpmath as mp

mp.mp.dps = 40


def q_exact(r):
    if abs(r) < mp.mpf("1e-12"):
        return mp.mpf(1) / 2 + r / 6 + r * r / 24
    return (mp.exp(r) - 1 - r) / (r * r)


def fit(name, bound, n_coefficients):
    poly, error = mp.chebyfit(q_exact, [-bound, bound], n_coefficients, error=True)
    coefficients = [float(c) for c in poly[::-1]]  # q0 (constant) first
    print(
        f"{name}: |r| <= {mp.nstr(bound, 6)}, q of degree {n_coefficients - 1}, "
        f"e**r of degree {n_coefficients + 1}; fit error {mp.nstr(error * bound * bound, 3)}"
    )
    print("    q =", tuple(coefficients))


if __name__ == "__main__":
    fit("float32", mp.log(2) / 2 * (1 + mp.mpf("1e-6")), 5)
