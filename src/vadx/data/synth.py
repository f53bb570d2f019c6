"""Synthetic surveillance scenes with exact, pixel-level ground truth (``vadx synth``).

Public anomaly datasets cannot be downloaded here, and none gives where *and* when an anomaly
is, pixel by pixel. These scenes do: every pixel of every frame knows which actor drew it, so
the anomaly mask is exact and explanation maps can be *scored*, not only looked at.

A scene is a textured ground (or frames of a real background video) seen from above at an
angle, people walking across it at varied speeds and directions, static obstacles that occlude
them, and distractors that are **not** the anomaly: other walkers (some running, some in pairs,
some in flame-coloured clothes), a drifting cloud shadow, a blinking lamp, lighting changes and
camera noise. One anomaly per clip, starting at a random frame and place:

* ``fight`` — two people walk towards each other, meet, and from then on move violently
  together (jerking bodies, flailing arms);
* ``fire`` — a flickering, growing flame-coloured region;
* ``shooting`` — a person stops, turns towards the plaza, fires a rifle: bursts of muzzle
  flashes, tracer streaks, gun smoke;
* ``normal`` — no anomaly.

The mask of a frame holds the visible pixels of the anomaly's actors from its first frame on
(occluded parts are excluded); the frame label is 1 from that frame on. Rendering uses no
anti-aliasing so masks and pixels agree exactly before video compression.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vadx._version import __version__
from vadx.data.masks import write_masks
from vadx.errors import InputError
from vadx.files import staged_folder, write_json
from vadx.video.encode import write_mp4, write_png

SYNTH_CLASSES = ("fight", "shooting", "fire", "normal")
SPLITS = ("train", "val", "test")
#: actor ids at or above this value belong to the anomaly
ANOMALY_ID = 1000


@dataclass(frozen=True)
class SynthConfig:
    """What ``vadx synth`` generates.

    Attributes:
        clips: clips per class in the train, val and test splits.
        num_frames: frames per clip.
        size: frame ``(height, width)``.
        fps: frame rate of the written videos.
        seed: everything is a function of this seed (and the clip's class, split and number).
        background: optional real video whose frames replace the textured ground.
        classes: which classes to generate (a subset of fight, shooting, fire, normal).
    """

    clips: tuple[int, int, int] = (40, 10, 10)
    num_frames: int = 40
    size: tuple[int, int] = (112, 112)
    fps: float = 10.0
    seed: int = 0
    background: str | None = None
    classes: tuple[str, ...] = SYNTH_CLASSES

    def __post_init__(self) -> None:
        if len(self.clips) != 3 or min(self.clips) < 0 or sum(self.clips) == 0:
            raise InputError(f"clips must be three counts (train, val, test), got {self.clips}")
        if self.num_frames < 8:
            raise InputError(f"clips need at least 8 frames, got {self.num_frames}")
        if min(self.size) < 48:
            raise InputError(f"frames must be at least 48×48, got {self.size}")
        if not self.fps > 0:
            raise InputError(f"fps must be positive, got {self.fps}")
        unknown = set(self.classes) - set(SYNTH_CLASSES)
        if unknown or not self.classes:
            raise InputError(
                f"classes must be among {', '.join(SYNTH_CLASSES)}, got {self.classes}"
            )


@dataclass
class SynthClip:
    """One rendered clip: frames uint8 ``(T, H, W, 3)``, masks bool ``(T, H, W)``, labels."""

    kind: str
    frames: np.ndarray
    masks: np.ndarray
    frame_labels: np.ndarray
    start: int | None
    details: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- drawing
class Canvas:
    """An RGB image and an id buffer drawn with the same rasteriser (no anti-aliasing)."""

    def __init__(self, image: np.ndarray) -> None:
        self.image = image
        self.ids = np.zeros(image.shape[:2], np.int32)

    def ellipse(self, centre, axes, angle, colour, owner, thickness=-1) -> None:
        c = (round(centre[0]), round(centre[1]))
        a = (max(1, round(axes[0])), max(1, round(axes[1])))
        cv2.ellipse(self.image, c, a, float(angle), 0, 360, colour, thickness, cv2.LINE_8)
        cv2.ellipse(self.ids, c, a, float(angle), 0, 360, int(owner), thickness, cv2.LINE_8)

    def line(self, p, q, colour, owner, thickness=1) -> None:
        p, q = (round(p[0]), round(p[1])), (round(q[0]), round(q[1]))
        t = max(1, round(thickness))
        cv2.line(self.image, p, q, colour, t, cv2.LINE_8)
        cv2.line(self.ids, p, q, int(owner), t, cv2.LINE_8)

    def polygon(self, points, colour, owner) -> None:
        pts = np.round(np.asarray(points)).astype(np.int32)
        cv2.fillPoly(self.image, [pts], colour, cv2.LINE_8)
        cv2.fillPoly(self.ids, [pts], int(owner), cv2.LINE_8)

    def rectangle(self, p, q, colour, owner) -> None:
        p, q = (round(p[0]), round(p[1])), (round(q[0]), round(q[1]))
        cv2.rectangle(self.image, p, q, colour, -1, cv2.LINE_8)
        cv2.rectangle(self.ids, p, q, int(owner), -1, cv2.LINE_8)


SKIN = [(233, 192, 160), (198, 140, 100), (141, 85, 56), (90, 56, 37), (250, 214, 180)]
CLOTHES = [
    (40, 60, 140),
    (30, 30, 35),
    (200, 200, 205),
    (150, 30, 30),
    (230, 110, 20),  # orange too
    (60, 120, 60),
    (120, 80, 160),
    (240, 200, 40),
    (90, 90, 100),
    (20, 90, 160),
]


@dataclass
class Person:
    """A walker: foot position, velocity, looks, gait phase."""

    owner: int
    x: float
    y: float
    vx: float
    vy: float
    shirt: tuple[int, int, int]
    pants: tuple[int, int, int]
    skin: tuple[int, int, int]
    phase: float
    size: float = 1.0

    def height(self, frame_height: int) -> float:
        # nearer (lower in the picture) looks bigger
        return self.size * frame_height * (0.17 + 0.13 * self.y / frame_height)


def random_person(owner: int, rng: np.random.Generator, width: int, height: int, speed=None):
    angle = rng.uniform(0, 2 * np.pi)
    speed = rng.uniform(0.3, 1.4) if speed is None else speed
    return Person(
        owner=owner,
        x=rng.uniform(0.1, 0.9) * width,
        y=rng.uniform(0.3, 0.95) * height,
        vx=speed * np.cos(angle) * width / 112,
        vy=0.6 * speed * np.sin(angle) * height / 112,
        shirt=CLOTHES[rng.integers(len(CLOTHES))],
        pants=CLOTHES[rng.integers(len(CLOTHES))],
        skin=SKIN[rng.integers(len(SKIN))],
        phase=rng.uniform(0, 2 * np.pi),
        size=rng.uniform(0.85, 1.15),
    )


def draw_person(
    canvas: Canvas,
    person: Person,
    frame_height: int,
    swing: float,
    tilt: float = 0.0,
    arms: tuple[float, float] | None = None,
    reach: float = 0.32,
) -> tuple[float, float, float]:
    """Draw a person (legs, torso, arms of length ``reach`` × height, head); returns the right
    shoulder and the height."""
    h = person.height(frame_height)
    x, y, owner = person.x, person.y, person.owner
    hip = (x + tilt * 0.45 * h, y - 0.45 * h)
    leg = max(1, h * 0.09)
    for side in (-1, 1):
        foot = (x + side * swing * 0.18 * h, y)
        canvas.line(hip, foot, person.pants, owner, leg)
    shoulder = (x + tilt * 0.8 * h, y - 0.78 * h)
    torso_c = ((hip[0] + shoulder[0]) / 2, (hip[1] + shoulder[1]) / 2)
    canvas.ellipse(torso_c, (0.13 * h, 0.2 * h), np.degrees(np.arctan(tilt)), person.shirt, owner)
    arm_angles = arms if arms is not None else (np.pi / 2 + 0.5 * swing, np.pi / 2 - 0.5 * swing)
    for side, angle in zip((-1, 1), arm_angles, strict=True):
        start = (shoulder[0] + side * 0.1 * h, shoulder[1])
        end = (start[0] + side * np.cos(angle) * reach * h, start[1] + np.sin(angle) * reach * h)
        canvas.line(start, end, person.shirt, owner, max(1, h * 0.07 * reach / 0.32))
    canvas.ellipse(
        (shoulder[0], shoulder[1] - 0.12 * h), (0.09 * h, 0.1 * h), 0, person.skin, owner
    )
    return shoulder[0] + 0.1 * h, shoulder[1], h


def walk(person: Person, width: int, height: int, rng: np.random.Generator) -> None:
    """Advance a walker one frame; it turns back at the picture's edges, sometimes turns."""
    person.x += person.vx
    person.y += person.vy
    if not 0.04 * width < person.x < 0.96 * width:
        person.vx = -person.vx
    if not 0.28 * height < person.y < 0.98 * height:
        person.vy = -person.vy
    if rng.random() < 0.02:
        angle = np.arctan2(person.vy, person.vx) + rng.normal(0, 0.8)
        speed = np.hypot(person.vx, person.vy)
        person.vx, person.vy = speed * np.cos(angle), 0.6 * speed * np.sin(angle)
    person.phase += 0.25 + 0.35 * np.hypot(person.vx, person.vy) * 112 / width


# --------------------------------------------------------------------------- scene
def textured_ground(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A paved plaza seen at an angle: tiles, stains, a grass strip."""
    base = np.array(
        rng.choice([(150, 145, 135), (120, 125, 120), (170, 160, 140), (110, 110, 115)])
    )
    noise = cv2.resize(
        rng.normal(0, 1, (height // 4, width // 4)).astype(np.float32), (width, height)
    )
    ground = base[None, None, :] + 14 * noise[..., None] + rng.normal(0, 4, (height, width, 1))
    ground = ground.astype(np.float32)
    tile = int(rng.integers(10, 18)) * width // 112 + 4
    for x in range(0, width, tile):
        ground[:, x] *= 0.85
    for y in range(0, height, tile // 2 + 2):
        ground[y, :] *= 0.88
    horizon = int(height * rng.uniform(0.15, 0.25))  # a wall or hedge at the back
    wall = np.array(rng.choice([(90, 110, 70), (140, 120, 100), (80, 80, 90)]), np.float32)
    ground[:horizon] = wall + rng.normal(0, 6, (horizon, width, 1))
    for _ in range(int(rng.integers(3, 8))):  # stains
        c = (int(rng.integers(width)), int(rng.integers(horizon, height)))
        axes = (int(rng.integers(3, 10)), int(rng.integers(2, 6)))
        cv2.ellipse(ground, c, axes, 0, 0, 360, tuple(float(v) * 0.8 for v in base), -1)
    return np.clip(ground, 0, 255)


class Background:
    """The static part of a scene: ground frames (textured or from a real video)."""

    def __init__(self, rng, size, num_frames, video: np.ndarray | None) -> None:
        height, width = size
        if video is None:
            self.frames = None
            self.still = textured_ground(rng, height, width)
        else:
            offset = int(rng.integers(len(video)))
            self.frames = np.roll(video, -offset, axis=0)
            self.still = None
        self.num_frames = num_frames

    def frame(self, t: int) -> np.ndarray:
        if self.frames is None:
            return self.still.copy()
        return self.frames[t % len(self.frames)].astype(np.float32)


# --------------------------------------------------------------------------- anomalies
class Anomaly:
    """Base class of the anomaly actors: ``draw(canvas, t)`` draws frame ``t``."""

    start: int

    def advance(self, t: int, rng: np.random.Generator) -> None:
        """Move the actors to frame ``t`` (before drawing)."""

    def depth(self) -> float:
        """Where the actors stand (their feet's y): sets the drawing order among walkers."""
        raise NotImplementedError

    def draw(self, canvas: Canvas, t: int, rng: np.random.Generator) -> None:
        raise NotImplementedError


class Fight(Anomaly):
    """Two people meet at a point and fight: jerking, tilted bodies, flailing arms."""

    def __init__(self, rng, size, num_frames):
        height, width = size
        self.size = size
        self.start = int(rng.integers(int(0.15 * num_frames), int(0.45 * num_frames)))
        self.meet = np.array([rng.uniform(0.25, 0.75) * width, rng.uniform(0.5, 0.9) * height])
        self.people = []
        for k in range(2):
            person = random_person(ANOMALY_ID + k, rng, width, height)
            side = -1 if k == 0 else 1
            approach = rng.uniform(0.6, 1.2) * self.start
            person.x = self.meet[0] + side * min(approach, 0.45 * width)
            person.y = self.meet[1] + rng.uniform(-0.1, 0.1) * height
            self.people.append(person)
        self.origins = [np.array([p.x, p.y]) for p in self.people]
        self.gap = 0.07 * width

    def depth(self):
        return float(self.meet[1])

    def draw(self, canvas, t, rng):
        height = self.size[0]
        for k, person in enumerate(self.people):
            side = -1 if k == 0 else 1
            target = self.meet + np.array([side * self.gap, 0])
            if t < self.start:  # walking towards each other
                share = t / max(self.start, 1)
                person.x, person.y = self.origins[k] + share * (target - self.origins[k])
                swing = np.sin(0.8 * t + person.phase)
                draw_person(canvas, person, height, swing)
            else:  # fighting: violent, erratic motion of both bodies and arms
                jerk = rng.normal(0, 0.07 * self.size[1], 2)
                person.x, person.y = target + jerk * np.array([1, 0.5])
                arms = tuple(rng.uniform(-np.pi, np.pi, 2))  # punches: long, thick, anywhere
                tilt = -side * rng.uniform(0.3, 0.9)  # lunging at, or reeling from, the other
                draw_person(canvas, person, height, rng.uniform(-1.8, 1.8), tilt, arms, reach=0.6)


class Fire(Anomaly):
    """A flickering, growing fire of yellow, orange and red tongues."""

    COLOURS = ((255, 240, 120), (255, 180, 40), (245, 110, 20), (210, 40, 10))

    def __init__(self, rng, size, num_frames):
        height, width = size
        self.start = int(rng.integers(int(0.15 * num_frames), int(0.45 * num_frames)))
        self.base = np.array([rng.uniform(0.15, 0.85) * width, rng.uniform(0.45, 0.92) * height])
        self.growth = rng.uniform(0.35, 0.7) * width / 112
        self.width = width

    def depth(self):
        return float(self.base[1])

    def draw(self, canvas, t, rng):
        if t < self.start:
            return
        age = t - self.start
        radius = min(0.05 * self.width + self.growth * age, 0.22 * self.width)
        for layer, colour in enumerate(reversed(self.COLOURS)):
            scale = 1 - 0.22 * layer
            for _ in range(3):
                dx = rng.normal(0, 0.35) * radius * scale
                tongue = radius * scale * rng.uniform(1.2, 2.2)
                points = [
                    (self.base[0] + dx - 0.5 * radius * scale, self.base[1]),
                    (self.base[0] + dx + rng.normal(0, 0.3) * radius, self.base[1] - tongue),
                    (self.base[0] + dx + 0.5 * radius * scale, self.base[1]),
                ]
                canvas.polygon(points, colour, ANOMALY_ID)
            canvas.ellipse(
                (self.base[0], self.base[1] - 0.2 * radius * scale),
                (0.6 * radius * scale, 0.3 * radius * scale),
                0,
                colour,
                ANOMALY_ID,
            )


class Shooting(Anomaly):
    """A walker stops, raises a rifle in both hands and fires bursts: big muzzle flashes, long
    tracer streaks, and gun smoke that lingers and drifts up between the shots."""

    FLASH = ((255, 150, 30), (255, 225, 90), (255, 255, 225))  # glow, rays, core

    def __init__(self, rng, size, num_frames):
        height, width = size
        self.size = size
        self.start = int(rng.integers(int(0.15 * num_frames), int(0.45 * num_frames)))
        self.shooter = random_person(ANOMALY_ID, rng, width, height, speed=rng.uniform(0.4, 0.9))
        self.direction = rng.choice([-1, 1])
        self.aim = rng.uniform(-0.35, 0.2)
        self.bullets: list[list[float]] = []
        self.smoke: list[list[float]] = []  # x, y, radius, age

    def advance(self, t, rng):
        height, width = self.size
        if t < self.start:
            walk(self.shooter, width, height, rng)
        elif t == self.start:  # turns to fire into the plaza, not out of the picture
            self.direction = 1 if self.shooter.x < width / 2 else -1

    def depth(self):
        return float(self.shooter.y)

    def draw(self, canvas, t, rng):
        height, width = self.size
        person = self.shooter
        if t < self.start:
            draw_person(canvas, person, height, np.sin(person.phase))
            return
        # at least a tenth of the frame tall: a far-away shooter still shows a visible rifle
        h = max(person.height(height), 0.1 * height)
        for puff in self.smoke:  # behind the shooter: grey puffs that grow, rise and drift
            x, y, radius, age = puff
            grey = int(160 + 8 * age)
            canvas.ellipse((x, y), (radius, 0.8 * radius), 0, (grey, grey, grey - 5), ANOMALY_ID)
            puff[0] += self.direction * 0.01 * width
            puff[1] -= 0.012 * height
            puff[2] *= 1.12
            puff[3] += 1
        self.smoke = [p for p in self.smoke if p[3] < 8]
        angle = self.aim if self.direction > 0 else np.pi - self.aim
        # both arms forward along the rifle (the left arm's angle mirrors the right one's)
        shoulder_x, shoulder_y, _ = draw_person(
            canvas, person, height, 0.0, 0.0, (np.pi - angle, angle)
        )
        if self.direction < 0:
            shoulder_x -= 0.2 * person.height(height)
        hand = (shoulder_x + np.cos(angle) * 0.3 * h, shoulder_y + np.sin(angle) * 0.3 * h)
        stock = (hand[0] - np.cos(angle) * 0.2 * h, hand[1] - np.sin(angle) * 0.2 * h)
        muzzle = (hand[0] + np.cos(angle) * 0.4 * h, hand[1] + np.sin(angle) * 0.4 * h)
        canvas.line(stock, muzzle, (20, 20, 20), ANOMALY_ID, max(3, 0.09 * h))
        speed = 0.2 * width
        for bullet in self.bullets:  # tracer streaks
            x, y, a = bullet
            head = (x + np.cos(a) * speed, y + np.sin(a) * speed)
            canvas.line((x, y), head, (255, 215, 80), ANOMALY_ID, max(2, 0.025 * width))
            bullet[0], bullet[1] = head
        self.bullets = [b for b in self.bullets if 0 <= b[0] < width and 0 <= b[1] < height]
        if (t - self.start) % 4 != 3:  # bursts: three shots, a pause
            glow, ray_colour, core = self.FLASH
            reach = rng.uniform(0.45, 0.6) * h
            canvas.ellipse(muzzle, (0.22 * h, 0.17 * h), np.degrees(angle), glow, ANOMALY_ID)
            for ray in np.linspace(-0.9, 0.9, 5) + angle + rng.uniform(-0.15, 0.15):
                tip = (muzzle[0] + np.cos(ray) * reach, muzzle[1] + np.sin(ray) * reach)
                canvas.line(muzzle, tip, ray_colour, ANOMALY_ID, max(2, 0.05 * h))
            canvas.ellipse(muzzle, (0.11 * h, 0.11 * h), 0, core, ANOMALY_ID)
            self.bullets.append([muzzle[0], muzzle[1], angle + rng.normal(0, 0.04)])
            self.smoke.append([muzzle[0], muzzle[1] - 0.05 * h, 0.1 * h, 0])


ANOMALIES: dict[str, Callable] = {"fight": Fight, "fire": Fire, "shooting": Shooting}


# --------------------------------------------------------------------------- rendering
OBSTACLE = (70, 68, 65)
LAMP = (255, 250, 200)


@dataclass
class Scene:
    """Everything in a clip but the anomaly: ground, walkers, obstacles and distractors."""

    ground: Background
    walkers: list[Person]
    obstacles: list[tuple[float, float, float, float]]
    lamp: tuple[float, float, int] | None
    shadow: tuple[float, float, float, float] | None
    light: str
    light_at: int
    noise_sigma: float

    @classmethod
    def random(cls, rng, size, num_frames, background) -> Scene:
        height, width = size
        ground = Background(rng, size, num_frames, background)
        walkers = [random_person(i + 1, rng, width, height) for i in range(rng.integers(1, 5))]
        if rng.random() < 0.3:  # a runner
            walkers.append(random_person(50, rng, width, height, speed=rng.uniform(2.0, 3.0)))
        if rng.random() < 0.3:  # two friends walking close together: not a fight
            friend, pal = (
                random_person(51, rng, width, height),
                random_person(52, rng, width, height),
            )
            pal.x, pal.y, pal.vx, pal.vy = friend.x + 0.08 * width, friend.y, friend.vx, friend.vy
            walkers += [friend, pal]
        obstacles = [
            (
                rng.uniform(0.05, 0.9) * width,
                rng.uniform(0.4, 0.95) * height,
                rng.uniform(0.04, 0.09) * width,
                rng.uniform(0.05, 0.12) * height,
            )
            for _ in range(rng.integers(0, 3))
        ]
        lamp = None
        if rng.random() < 0.35:  # a blinking lamp: bright flashes that are not gunfire
            lamp = (
                rng.uniform(0.1, 0.9) * width,
                rng.uniform(0.08, 0.3) * height,
                int(rng.integers(2, 6)),
            )
        shadow = None
        if rng.random() < 0.5:  # a cloud shadow drifting across
            start = (rng.uniform(-0.3, 0.3) * width, rng.uniform(0.3, 0.9) * height)
            shadow = (*start, rng.uniform(0.4, 1.2) * width / 112, rng.uniform(0.2, 0.4) * width)
        return cls(
            ground,
            walkers,
            obstacles,
            lamp,
            shadow,
            light=str(rng.choice(["steady", "drift", "switch"])),
            light_at=int(rng.integers(num_frames)),
            noise_sigma=float(rng.uniform(1.5, 5.0)),
        )

    def lighting(self, t: int, num_frames: int) -> float:
        if self.light == "drift":
            return 0.85 + 0.3 * t / max(num_frames - 1, 1)
        if self.light == "switch":
            return 1.0 if t < self.light_at else 0.75
        return 1.0


def render_clip(
    kind: str,
    seed: int | tuple[int, ...],
    size: tuple[int, int] = (112, 112),
    num_frames: int = 40,
    *,
    background: np.ndarray | None = None,
    include_anomaly: bool = True,
) -> SynthClip:
    """Render one clip of ``kind`` from ``seed``.

    With ``include_anomaly=False`` the same scene is rendered without the anomaly's actors —
    every other random draw is identical (each part has its own random stream), which is what
    the tests use to check that masks cover exactly the pixels the anomaly changes.
    """
    if kind not in SYNTH_CLASSES:
        raise InputError(
            f"unknown synthetic class {kind!r}; choose from {', '.join(SYNTH_CLASSES)}"
        )
    schedule = [(kind, 0, num_frames)] if kind in ANOMALIES else []
    frames, masks, labels, events, details = _render(
        seed, size, num_frames, background, schedule, include_anomaly
    )
    start = events[0][1] if events else None
    return SynthClip(kind, frames, masks, (labels >= 0).astype(np.int64), start, details)


@dataclass
class SynthVideo:
    """A long scene with several anomalies: frames, masks, per-frame class (-1: normal) and
    the true events ``(class, first frame, last frame)``."""

    frames: np.ndarray
    masks: np.ndarray
    frame_classes: np.ndarray
    events: list[tuple[str, int, int]]


def render_long(
    seed: int | tuple[int, ...],
    schedule: list[tuple[str, int]],
    size: tuple[int, int] = (112, 112),
    background: np.ndarray | None = None,
) -> SynthVideo:
    """One continuous scene through ``schedule`` — ``(class, frames)`` segments in order,
    e.g. ``[("normal", 60), ("fight", 50), ("normal", 40), ("fire", 60)]``. Each anomaly
    starts at a random frame of its segment and lasts to the segment's end."""
    for kind, length in schedule:
        if kind not in SYNTH_CLASSES or length < 8:
            raise InputError(f"bad segment ({kind!r}, {length}): a class and at least 8 frames")
    placed, offset = [], 0
    for kind, length in schedule:
        if kind in ANOMALIES:
            placed.append((kind, offset, length))
        offset += length
    frames, masks, labels, events, _ = _render(seed, size, offset, background, placed, True)
    return SynthVideo(frames, masks, labels, events)


def _render(seed, size, num_frames, background, schedule, include_anomaly):
    """The renderer behind :func:`render_clip` and :func:`render_long`."""
    height, width = size
    scene_seed, walk_seed, anomaly_seed, draw_seed, noise_seed = np.random.SeedSequence(seed).spawn(
        5
    )
    scene = Scene.random(np.random.default_rng(scene_seed), size, num_frames, background)
    walk_rng, noise_rng = np.random.default_rng(walk_seed), np.random.default_rng(noise_seed)
    draw_rng = np.random.default_rng(draw_seed)
    seeds = [anomaly_seed] if len(schedule) == 1 else anomaly_seed.spawn(len(schedule))
    actors = [
        (kind, offset, length, ANOMALIES[kind](np.random.default_rng(s), size, length))
        for (kind, offset, length), s in zip(schedule, seeds, strict=True)
    ]
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    masks = np.zeros((num_frames, height, width), bool)
    labels = np.full(num_frames, -1, np.int64)
    for t in range(num_frames):
        canvas = Canvas(scene.ground.frame(t))
        # painter's order: whatever stands lower in the picture is nearer and drawn later
        layers: list[tuple[float, Callable[[], object]]] = []
        for person in scene.walkers:
            walk(person, width, height, walk_rng)
            layers.append((person.y, partial(_draw_walker, canvas, person, height)))
        for x, y, w, h in scene.obstacles:
            layers.append((y, partial(canvas.rectangle, (x, y - h), (x + w, y), OBSTACLE, -1)))
        active = None
        for kind, offset, length, anomaly in actors:
            if offset <= t < offset + length:
                active = (kind, t - offset, anomaly)
                anomaly.advance(t - offset, draw_rng)
                if include_anomaly:
                    draw = partial(anomaly.draw, canvas, t - offset, draw_rng)
                    layers.append((anomaly.depth(), draw))
        for _, draw in sorted(layers, key=lambda layer: layer[0]):
            draw()
        if scene.lamp is not None and t % scene.lamp[2] == 0:
            radius = max(2, width // 40)
            canvas.ellipse(scene.lamp[:2], (radius, radius), 0, LAMP, 0)
        image = canvas.image
        if scene.shadow is not None:
            sx, sy, speed, radius = scene.shadow
            shade = np.ones((height, width), np.float32)
            centre = (round(sx + speed * t), round(sy))
            cv2.ellipse(shade, centre, (round(radius), round(radius / 2)), 0, 0, 360, 0.7, -1)
            image *= shade[..., None]
        image *= scene.lighting(t, num_frames)
        image += noise_rng.normal(0, scene.noise_sigma, image.shape).astype(np.float32)
        frames[t] = np.clip(image, 0, 255).astype(np.uint8)
        if active is not None and active[1] >= active[2].start:
            labels[t] = SYNTH_CLASSES.index(active[0])
            if include_anomaly:
                masks[t] = canvas.ids >= ANOMALY_ID
    events = [(kind, offset + a.start, offset + length - 1) for kind, offset, length, a in actors]
    details = {
        "light": scene.light,
        "walkers": len(scene.walkers),
        "lamp": scene.lamp is not None,
        "shadow": scene.shadow is not None,
    }
    return frames, masks, labels, events, details


def _draw_walker(canvas: Canvas, person: Person, height: int) -> None:
    draw_person(canvas, person, height, np.sin(person.phase))


# --------------------------------------------------------------------------- dataset
def load_background(path: str | os.PathLike[str], size: tuple[int, int], limit: int = 300):
    """Frames of a real video, centre-cropped to ``size``, to paste scenes onto."""
    from vadx.video.decode import VideoReader
    from vadx.video.preprocess import fit_frames

    with VideoReader(path) as video:
        count = min(len(video), limit)
        frames = video.read_range(0, count).data
    return fit_frames(frames, size, "crop")[0]


def clip_seed(seed: int, kind: str, split: str, number: int) -> tuple[int, int, int, int]:
    """The seed of one clip: independent of how many other clips are generated."""
    return (seed, SYNTH_CLASSES.index(kind), SPLITS.index(split), number)


def generate(
    out: str | os.PathLike[str],
    config: SynthConfig = SynthConfig(),
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write a synthetic dataset to ``out``; returns the path of its ``manifest.json``.

    Layout: ``out/<split>/<class>/<clip>.mp4`` with ``<clip>.masks.npz`` (masks and frame
    labels) beside each video — the folder-per-class layout — ``out/manifest.json``
    describing every clip (class, split, seed, anomaly start, mask area per frame), and
    ``out/preview.png``: a first clip of each class, its anomaly outlined in green. The files
    appear together when the last is written, ``manifest.json`` last (an interrupted run
    leaves nothing).
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise InputError(f"{out} exists and is not a vadx synth dataset; choose another folder")
    background = None
    if config.background is not None:
        background = load_background(config.background, config.size)
    jobs = [
        (split, kind, number)
        for split, count in zip(SPLITS, config.clips, strict=True)
        for kind in config.classes
        for number in range(count)
    ]
    with staged_folder(out, last="manifest.json") as staging:
        clips = _write_clips(staging, jobs, config, background, progress)
        write_png(staging / "preview.png", preview(config, background))
        manifest = {
            "generator": "vadx synth",
            "vadx_version": __version__,
            "config": asdict(config),
            "classes": list(config.classes),
            "clips": clips,
        }
        write_json(staging / "manifest.json", manifest)
    return out / "manifest.json"


def _write_clips(
    out: Path,
    jobs: list[tuple[str, str, int]],
    config: SynthConfig,
    background: np.ndarray | None,
    progress: Callable[[int, int], None] | None,
) -> list[dict[str, Any]]:
    """Render and write the clips of ``jobs`` (split, class, number) into ``out``; returns
    their manifest entries."""
    clips = []
    for done, (split, kind, number) in enumerate(jobs, 1):
        seed = clip_seed(config.seed, kind, split, number)
        clip = render_clip(kind, seed, config.size, config.num_frames, background=background)
        name = f"{kind}_{split}_{number:04d}"
        video = out / split / kind / f"{name}.mp4"
        write_mp4(video, clip.frames, fps=config.fps)
        write_masks(video.with_name(f"{name}.masks.npz"), clip.masks, clip.frame_labels)
        clips.append(
            {
                "video": str(video.relative_to(out)),
                "masks": str(video.with_name(f"{name}.masks.npz").relative_to(out)),
                "split": split,
                "class": kind,
                "seed": list(seed),
                "anomaly_start": clip.start,
                "mask_area": clip.masks.reshape(len(clip.masks), -1).sum(1).tolist(),
                "scene": clip.details,
            }
        )
        if progress is not None:
            progress(done, len(jobs))
    return clips


def preview(config: SynthConfig, background: np.ndarray | None = None, columns: int = 6):
    """Contact sheet: one row per class (its first training clip), frames spread over the
    clip, the anomaly mask outlined in green."""
    rows = []
    for kind in config.classes:
        clip = render_clip(
            kind,
            clip_seed(config.seed, kind, "train", 0),
            config.size,
            config.num_frames,
            background=background,
        )
        picks = np.linspace(0, config.num_frames - 1, columns).round().astype(int)
        tiles = []
        for t in picks:
            tile = clip.frames[t].copy()
            outline, _ = cv2.findContours(
                clip.masks[t].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
            )
            cv2.drawContours(tile, outline, -1, (0, 255, 0), 1)
            cv2.putText(
                tile,
                f"{kind} t={t}",
                (2, 10),
                cv2.FONT_HERSHEY_PLAIN,
                0.7,
                (255, 255, 255),
                1,
                cv2.LINE_AA,
            )
            tiles.append(np.pad(tile, ((1, 1), (1, 1), (0, 0))))
        rows.append(np.concatenate(tiles, axis=1))
    return np.concatenate(rows, axis=0)
