/*
 * Benchmark: double-precision floating point, the classic n-body simulation of the Jovian
 * planets (as in the Computer Language Benchmarks Game, written here from the physics): SSE2
 * scalar adds, multiplies, divides and square roots in a short dependent loop. argv[1] scales
 * the number of steps (default 10, about 0.4 s natively); energies print as integers scaled by
 * 1e9 so the check does not depend on libc's float formatting.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define PI 3.141592653589793
#define SOLAR_MASS (4 * PI * PI)
#define DAYS_PER_YEAR 365.24
#define BODIES 5

struct body {
  double x, y, z, vx, vy, vz, mass;
};

static struct body system_bodies[BODIES] = {
    {0, 0, 0, 0, 0, 0, SOLAR_MASS}, /* sun */
    {4.84143144246472090e+00, -1.16032004402742839e+00, -1.03622044471123109e-01, 1.66007664274403694e-03 * DAYS_PER_YEAR,
     7.69901118419740425e-03 * DAYS_PER_YEAR, -6.90460016972063023e-05 * DAYS_PER_YEAR, 9.54791938424326609e-04 * SOLAR_MASS},
    {8.34336671824457987e+00, 4.12479856412430479e+00, -4.03523417114321381e-01, -2.76742510726862411e-03 * DAYS_PER_YEAR,
     4.99852801234917238e-03 * DAYS_PER_YEAR, 2.30417297573763929e-05 * DAYS_PER_YEAR, 2.85885980666130812e-04 * SOLAR_MASS},
    {1.28943695621391310e+01, -1.51111514016986312e+01, -2.23307578892655734e-01, 2.96460137564761618e-03 * DAYS_PER_YEAR,
     2.37847173959480950e-03 * DAYS_PER_YEAR, -2.96589568540237556e-05 * DAYS_PER_YEAR, 4.36624404335156298e-05 * SOLAR_MASS},
    {1.53796971148509165e+01, -2.59193146099879641e+01, 1.79258772950371181e-01, 2.68067772490389322e-03 * DAYS_PER_YEAR,
     1.62824170038242295e-03 * DAYS_PER_YEAR, -9.51592254519715870e-05 * DAYS_PER_YEAR, 5.15138902046611451e-05 * SOLAR_MASS}};

static void offset_momentum(struct body *bodies) {
  double px = 0, py = 0, pz = 0;
  for (int i = 0; i < BODIES; i++) {
    px += bodies[i].vx * bodies[i].mass;
    py += bodies[i].vy * bodies[i].mass;
    pz += bodies[i].vz * bodies[i].mass;
  }
  bodies[0].vx = -px / SOLAR_MASS;
  bodies[0].vy = -py / SOLAR_MASS;
  bodies[0].vz = -pz / SOLAR_MASS;
}

static double energy(const struct body *bodies) {
  double e = 0;
  for (int i = 0; i < BODIES; i++) {
    const struct body *b = &bodies[i];
    e += 0.5 * b->mass * (b->vx * b->vx + b->vy * b->vy + b->vz * b->vz);
    for (int j = i + 1; j < BODIES; j++) {
      double dx = b->x - bodies[j].x, dy = b->y - bodies[j].y, dz = b->z - bodies[j].z;
      e -= b->mass * bodies[j].mass / sqrt(dx * dx + dy * dy + dz * dz);
    }
  }
  return e;
}

static void advance(struct body *bodies, double dt) {
  for (int i = 0; i < BODIES; i++) {
    struct body *b = &bodies[i];
    for (int j = i + 1; j < BODIES; j++) {
      struct body *other = &bodies[j];
      double dx = b->x - other->x, dy = b->y - other->y, dz = b->z - other->z;
      double distance_squared = dx * dx + dy * dy + dz * dz;
      double magnitude = dt / (distance_squared * sqrt(distance_squared));
      b->vx -= dx * other->mass * magnitude;
      b->vy -= dy * other->mass * magnitude;
      b->vz -= dz * other->mass * magnitude;
      other->vx += dx * b->mass * magnitude;
      other->vy += dy * b->mass * magnitude;
      other->vz += dz * b->mass * magnitude;
    }
  }
  for (int i = 0; i < BODIES; i++) {
    bodies[i].x += dt * bodies[i].vx;
    bodies[i].y += dt * bodies[i].vy;
    bodies[i].z += dt * bodies[i].vz;
  }
}

int main(int argc, char **argv) {
  int scale = argc > 1 ? atoi(argv[1]) : 10;
  offset_momentum(system_bodies);
  long before = lround(energy(system_bodies) * 1e9);
  for (long step = 0; step < (long)scale * 400000; step++) advance(system_bodies, 0.01);
  long after = lround(energy(system_bodies) * 1e9);
  printf("nbody energy x1e9: before %ld after %ld\n", before, after);
  return 0;
}
